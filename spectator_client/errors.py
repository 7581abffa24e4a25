"""Typed errors: every failure the client reports is a ``SpectatorError``.

The seed's base classes are kept so old ``except ValueError`` / ``except RuntimeError``
blocks still catch them: not found, bad password, access denied and bad input are
``ValueError``; full, expired, closed and rate-limited are ``RuntimeError``; an unreachable
server is a ``ConnectionError``.
"""

from __future__ import annotations

from typing import Any


class SpectatorError(Exception):
    """Base of every error the client raises.

    ``code`` is the server's error code (``room_full``, ``validation_error``…), ``detail`` its
    message, ``status`` the HTTP status or WebSocket close code, ``fields`` the offending fields.
    """

    default_code = "error"

    def __init__(
        self,
        detail: str = "",
        *,
        code: str | None = None,
        status: int | None = None,
        fields: dict[str, list[str]] | None = None,
    ):
        self.detail = detail or self.__class__.__name__
        self.code = code or self.default_code
        self.status = status
        self.fields = dict(fields or {})
        super().__init__(self.detail)


class NotFoundError(SpectatorError, ValueError):
    default_code = "not_found"


class RoomNotFound(NotFoundError):
    default_code = "room_not_found"


class TrainingSessionNotFound(NotFoundError):
    default_code = "not_found"


class AccessDenied(SpectatorError, ValueError):
    """Refused: not signed in, not invited, denied, banned or not a manager."""

    default_code = "permission_denied"


class AuthenticationRequired(AccessDenied):
    """The request needs a valid API token (or the WebSocket a valid ticket)."""

    default_code = "not_authenticated"


class Banned(AccessDenied):
    default_code = "banned"


class TimedOut(AccessDenied):
    """Timed out of the room by a moderator until the time passes."""

    default_code = "timed_out"


class RoomLocked(AccessDenied):
    """The room is locked: nobody new gets in."""

    default_code = "room_locked"


class InvalidPassword(AccessDenied):
    """A password room's password was missing or wrong."""

    default_code = "wrong_password"


class ValidationError(SpectatorError, ValueError):
    """Bad input; ``field`` names the first offending field (``points.3.win_rate``)."""

    default_code = "validation_error"

    @property
    def field(self) -> str | None:
        return next(iter(self.fields), None)


class RoomFull(SpectatorError, RuntimeError):
    default_code = "room_full"


class RoomExpired(SpectatorError, RuntimeError):
    """The room has ended: expired, or (``RoomClosed``) closed by a manager."""

    default_code = "room_expired"


class RoomClosed(RoomExpired):
    default_code = "room_closed"


class Conflict(SpectatorError, RuntimeError):
    default_code = "conflict"


class RateLimited(SpectatorError, RuntimeError):
    """Too many requests (or wrong passwords); ``retry_after`` is in seconds, when known."""

    default_code = "throttled"

    def __init__(self, detail: str = "", *, retry_after: float | None = None, **kwargs: Any):
        super().__init__(detail, **kwargs)
        self.retry_after = retry_after


class ServerUnavailable(SpectatorError, ConnectionError):
    """The server could not be reached, timed out, or failed (5xx).

    ``retry_after`` is in seconds, when the server said (a 503 while its database is down).
    """

    default_code = "server_unavailable"

    def __init__(self, detail: str = "", *, retry_after: float | None = None, **kwargs: Any):
        super().__init__(detail, **kwargs)
        self.retry_after = retry_after


class StreamBehind(SpectatorError, RuntimeError):
    """The server closed a live connection that fell too far behind (close code 4408)."""

    default_code = "too_far_behind"


CODE_CLASSES: dict[str, type[SpectatorError]] = {
    "room_not_found": RoomNotFound,
    "wrong_password": InvalidPassword,
    "password_required": InvalidPassword,
    "banned": Banned,
    "timed_out": TimedOut,
    "room_locked": RoomLocked,
    "invite_link_invalid": AccessDenied,
    "invite_link_not_yours": AccessDenied,
    "not_invited": AccessDenied,
    "join_denied": AccessDenied,
    "sign_in_required": AuthenticationRequired,
    "not_authenticated": AuthenticationRequired,
    "authentication_failed": AuthenticationRequired,
    "room_full": RoomFull,
    "room_closed": RoomClosed,
    "room_expired": RoomExpired,
    "validation_error": ValidationError,
    "locked_out": RateLimited,
    "throttled": RateLimited,
}

STATUS_CLASSES: dict[int, type[SpectatorError]] = {
    400: ValidationError,
    401: AuthenticationRequired,
    403: AccessDenied,
    404: NotFoundError,
    409: Conflict,
    410: RoomExpired,
    429: RateLimited,
}

# WebSocket close codes of DESIGN.md section 4.
CLOSE_CLASSES: dict[int, type[SpectatorError]] = {
    4202: AccessDenied,  # sent back to the waiting room: join again to wait for approval
    4400: ValidationError,
    4401: AuthenticationRequired,
    4403: AccessDenied,
    4404: RoomNotFound,
    4408: StreamBehind,
    4409: RoomFull,
    4410: RoomExpired,
    4429: RateLimited,
}


def _retry_after(headers) -> float | None:
    raw = headers.get("retry-after") if headers is not None else None
    try:
        return max(0.0, float(raw)) if raw is not None else None
    except ValueError:
        return None


def error_for_response(status: int, body: Any, headers=None, *, path: str = "") -> SpectatorError:
    """Build the typed error for an HTTP error response (``body`` is the decoded JSON, if any)."""
    if isinstance(body, dict):
        code = str(body.get("error") or f"http_{status}")
        detail = str(body.get("detail") or body.get("error") or f"HTTP {status}")
        fields = body.get("fields") if isinstance(body.get("fields"), dict) else {}
    else:
        code, detail, fields = f"http_{status}", (str(body)[:500] if body else f"HTTP {status}"), {}
    fields = {
        str(key): [str(m) for m in (value if isinstance(value, list) else [value])] for key, value in fields.items()
    }
    if status >= 500:
        cls: type[SpectatorError] = ServerUnavailable
    elif code in CODE_CLASSES:
        cls = CODE_CLASSES[code]
    elif status == 404 and "/sessions/" in path:
        cls = TrainingSessionNotFound
    else:
        cls = STATUS_CLASSES.get(status, SpectatorError)
    if code == "room_closed" and cls is RoomExpired:
        cls = RoomClosed
    kwargs: dict[str, Any] = {"code": code, "status": status, "fields": fields}
    if issubclass(cls, (RateLimited, ServerUnavailable)):
        kwargs["retry_after"] = _retry_after(headers)
    return cls(detail, **kwargs)


def error_for_close(close_code: int | None, reason: str = "") -> SpectatorError:
    """Build the typed error for a WebSocket the server closed with ``close_code``.

    ``reason`` (the close reason or the ``room_closed`` message's) refines 4410 into
    ``RoomClosed`` and 4403 into ``Banned``.
    """
    cls = CLOSE_CLASSES.get(close_code or 0, ServerUnavailable)
    reason = (reason or "").lower()
    if close_code == 4410 and "closed" in reason:
        cls = RoomClosed
    elif close_code == 4403 and "banned" in reason:
        cls = Banned
    detail = f"The server closed the live stream (code {close_code}{', ' + reason if reason else ''})."
    return cls(detail, code=cls.default_code, status=close_code)
