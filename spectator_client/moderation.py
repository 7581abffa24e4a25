"""Room moderation for ``SpectatorRoomManager``: the waiting room, locks and listing, room
moderators, timeouts, invite links and the audit trail. Errors are those of ``errors``."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from spectator_client.models import RoomInfo


def _room_path(ref: str, *parts: str | int) -> str:
    from spectator_client.rooms import room_path

    return room_path(ref, *parts)


def invite_link_parse(url_or_token: str) -> tuple[str | None, str]:
    """Split an invite link ``…/r/<CODE>/?invite=<token>`` into its room code and token.

    A bare token gives ``(None, token)``.
    """
    parts = urlsplit(url_or_token.strip())
    token = (parse_qs(parts.query).get("invite") or [""])[0]
    if not token:
        return None, url_or_token.strip()
    segments = [segment for segment in parts.path.split("/") if segment]
    code = segments[segments.index("r") + 1] if "r" in segments[:-1] else None
    return code, token


class RoomModerationMixin:
    """Moderation methods; ``self.api`` is the manager's ``AsyncApi``."""

    api: Any

    # --- Waiting room ------------------------------------------------------------------------

    async def admit_all(self, room_code: str) -> int:
        """Approve every pending join request; return how many were admitted."""
        return (await self.api.post(_room_path(room_code, "join-requests", "admit-all")))["admitted"]

    async def send_to_waiting_room(self, room_code: str, spectator_id: int) -> dict[str, Any]:
        """Send a present spectator back to the waiting room (the room must require approval).

        Returns their new pending join request. Raises ``ValidationError`` (``require_approval``,
        ``spectator_id``), ``AccessDenied``, ``RoomNotFound``.
        """
        return await self.api.post(_room_path(room_code, "spectators", int(spectator_id), "send-to-waiting"))

    async def set_approval(
        self,
        room_code: str,
        required: bool,
        *,
        approval_ttl: int | None = None,
        waiting_message: str | None = None,
    ) -> RoomInfo:
        """Turn approval on or off (off admits everyone waiting); optionally set how long an
        approval lasts (seconds, 0 = for good) and the waiting room's message."""
        body: dict[str, Any] = {"require_approval": bool(required)}
        if approval_ttl is not None:
            body["approval_ttl"] = approval_ttl
        if waiting_message is not None:
            body["waiting_message"] = waiting_message
        return RoomInfo.from_api(await self.api.patch(_room_path(room_code, "access"), body))

    # --- Lock and listing --------------------------------------------------------------------

    async def lock_room(self, room_code: str) -> RoomInfo:
        """Lock a room: nobody new gets in; spectators present stay."""
        return RoomInfo.from_api(await self.api.post(_room_path(room_code, "lock")))

    async def unlock_room(self, room_code: str) -> RoomInfo:
        """Unlock a room."""
        return RoomInfo.from_api(await self.api.post(_room_path(room_code, "unlock")))

    async def set_listed(self, room_code: str, listed: bool) -> RoomInfo:
        """List a public or password room on the lobby, or unlist it (reachable by link only)."""
        return RoomInfo.from_api(await self.api.patch(_room_path(room_code, "access"), {"listed": bool(listed)}))

    # --- Moderators --------------------------------------------------------------------------

    async def add_moderator(self, room_code: str, user_id: str) -> dict[str, Any]:
        """Make a user (by username) a moderator of the room (idempotent)."""
        return await self.api.post(_room_path(room_code, "moderators"), {"username": str(user_id)})

    async def remove_moderator(self, room_code: str, user_id: str) -> bool:
        """Take a moderator's powers away; False when they were not a moderator."""
        moderators = await self.list_moderators(room_code)
        if not any(m.get("username") == str(user_id) for m in moderators):
            return False
        await self.api.delete(_room_path(room_code, "moderators", str(user_id)))
        return True

    async def list_moderators(self, room_code: str) -> list[dict[str, Any]]:
        """The room's moderators besides its creator."""
        return await self.api.get(_room_path(room_code, "moderators"))

    # --- Timeouts ----------------------------------------------------------------------------

    async def timeout_user(
        self, room_code: str, user_id: str | int, duration_seconds: int, reason: str = ""
    ) -> dict[str, Any]:
        """Time out a user (by username) or a present spectator (by spectator id, an int): they
        leave now and cannot return for ``duration_seconds``."""
        body: dict[str, Any] = {"duration_seconds": duration_seconds, "reason": reason}
        if isinstance(user_id, int) and not isinstance(user_id, bool):
            body["spectator_id"] = user_id
        else:
            body["username"] = str(user_id)
        return await self.api.post(_room_path(room_code, "timeouts"), body)

    async def end_timeout(self, room_code: str, user_id: str) -> bool:
        """End a user's timeout early; False when they were not timed out."""
        timeouts = await self.list_timeouts(room_code)
        match = next((t for t in timeouts if t.get("username") == str(user_id)), None)
        if match is None:
            return False
        await self.api.delete(_room_path(room_code, "timeouts", match["ban_id"]))
        return True

    async def list_timeouts(self, room_code: str) -> list[dict[str, Any]]:
        """The room's running timeouts."""
        return await self.api.get(_room_path(room_code, "timeouts"))

    # --- Invite links ------------------------------------------------------------------------

    async def create_invite_link(
        self,
        room_code: str,
        *,
        user_id: str | None = None,
        grants_password: bool = False,
        expires_in_hours: float = 24,
        label: str = "",
    ) -> dict[str, Any]:
        """Create an invite link; its ``url`` and ``token`` are shown this once.

        ``user_id`` limits it to one user; ``grants_password`` lets it skip a password room's
        password. Raises ``ValidationError`` naming the field (private rooms get none).
        """
        body: dict[str, Any] = {
            "grants_password": grants_password,
            "expires_in_hours": expires_in_hours,
            "label": label,
        }
        if user_id:
            body["username"] = str(user_id)
        return await self.api.post(_room_path(room_code, "invite-links"), body)

    async def list_invite_links(self, room_code: str) -> list[dict[str, Any]]:
        """The room's invite links that are not revoked (without their tokens)."""
        return await self.api.get(_room_path(room_code, "invite-links"))

    async def revoke_invite_link(self, room_code: str, link_id: int) -> None:
        """Revoke an invite link; who joined with it stays."""
        await self.api.delete(_room_path(room_code, "invite-links", int(link_id)))

    async def join_with_invite_link(
        self, invite_link: str, user_name: str | None = None, room_code: str | None = None
    ) -> dict[str, Any]:
        """Join the room an invite link (its URL, or its token with ``room_code``) leads to.

        Raises ``AccessDenied`` (``invite_link_invalid``, ``invite_link_not_yours``) and the
        errors of ``join_room_request``.
        """
        from spectator_client.errors import ValidationError
        from spectator_client.rooms import room_join

        code, token = invite_link_parse(invite_link)
        code = room_code or code
        if not code:
            raise ValidationError(
                "Give the invite link's URL, or its token and room_code.", fields={"room_code": ["Required."]}
            )
        return await room_join(self.api, code, display_name=user_name, invite_token=token)

    # --- Audit trail -------------------------------------------------------------------------

    async def get_audit_log(self, room_code: str) -> list[dict[str, Any]]:
        """Every audit entry of the room, newest first."""
        return await self.api.get_all(_room_path(room_code, "audit"))

    async def export_audit_csv(self, room_code: str) -> str:
        """The room's audit trail as CSV text."""
        return await self.api.get(f"{_room_path(room_code)}audit.csv")
