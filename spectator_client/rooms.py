"""SpectatorRoomManager: create rooms, join them, and moderate (approve, invite, block, close)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from spectator_client.errors import AccessDenied, TrainingSessionNotFound, ValidationError
from spectator_client.models import RoomAccessControl, RoomInfo, SpectatorMode
from spectator_client.moderation import RoomModerationMixin
from spectator_client.transport import ApiConfig, AsyncApi


def room_path(ref: str, *parts: str | int) -> str:
    """``rooms/<ref>/<parts>/`` with the code or id quoted."""
    tail = "".join(f"{quote(str(part), safe='')}/" for part in parts)
    return f"rooms/{quote(str(ref).strip(), safe='')}/{tail}"


def session_path(training_session_id: str, *parts: str) -> str:
    tail = "".join(f"{part}/" for part in parts)
    return f"sessions/{quote(str(training_session_id), safe='')}/{tail}"


async def training_session_ensure(
    api: AsyncApi,
    training_session_id: str,
    *,
    name: str | None = None,
    algorithm: str | None = None,
    total_episodes: int | None = None,
) -> dict[str, Any]:
    """Create the training session, or return it when the caller already owns (or, as staff, manages) it.

    Raises ``ValidationError`` (field ``id``) when the id belongs to someone else.
    """
    body: dict[str, Any] = {"id": training_session_id}
    if name is not None:
        body["name"] = name
    if algorithm is not None:
        body["algorithm"] = algorithm
    if total_episodes is not None:
        body["total_episodes"] = total_episodes
    try:
        return await api.post("sessions/", body)
    except ValidationError as exc:
        if exc.field != "id":
            raise
        try:
            # Staff may manage a session another user owns.
            return await api.get(session_path(training_session_id))
        except TrainingSessionNotFound:
            raise exc from None


async def room_join(
    api: AsyncApi,
    ref: str,
    *,
    display_name: str | None = None,
    password: str | None = None,
    message: str = "",
    user_id: str | None = None,
    invite_token: str = "",
) -> dict[str, Any]:
    """Join a room: ``status`` is ``approved`` (with a ``websocket_url`` carrying a ticket) or ``pending_approval``.

    Anonymous callers are recognized again by the ``visitor_token`` kept on ``api``.
    """
    body: dict[str, Any] = {"message": message or ""}
    if display_name:
        body["display_name"] = display_name
    if password:
        body["password"] = password
    if user_id:
        body["user_id"] = str(user_id)
    if invite_token:
        body["invite_token"] = invite_token
    token = api.visitor_tokens.get(_ref_key(ref))
    if token:
        body["visitor_token"] = token
    result = await api.post(room_path(ref, "join"), body)
    if result.get("visitor_token"):
        for key in (ref, result.get("room_code"), result.get("room_id")):
            if key:
                api.visitor_tokens[_ref_key(str(key))] = result["visitor_token"]
    return result


async def room_leave(api: AsyncApi, ref: str) -> None:
    body: dict[str, Any] = {}
    token = api.visitor_tokens.get(_ref_key(ref))
    if token:
        body["visitor_token"] = token
    await api.post(room_path(ref, "leave"), body)


def _ref_key(ref: str) -> str:
    return str(ref).strip().upper()


class SpectatorRoomManager(RoomModerationMixin):
    """Rooms and their moderation over the API; every network method is a coroutine.

    ``server_url`` defaults to ``$SPECTATOR_URL`` (``game_server_url`` is the seed's alias),
    ``api_token`` to ``$SPECTATOR_TOKEN``; pass ``api_token=""`` to act anonymously.
    """

    def __init__(
        self,
        server_url: str | None = None,
        api_token: str | None = None,
        *,
        game_server_url: str | None = None,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        self.config = ApiConfig.build(server_url, api_token, game_server_url=game_server_url, timeout=timeout)
        self.api = AsyncApi(self.config, transport=transport)

    @property
    def server_url(self) -> str:
        return self.config.server_url

    async def __aenter__(self) -> SpectatorRoomManager:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.cleanup()

    async def cleanup(self) -> None:
        """Close the HTTP connections."""
        await self.api.aclose()

    # --- Rooms -----------------------------------------------------------------------------

    async def create_spectator_room(
        self,
        training_session_id: str,
        creator_id: str | None = None,
        access_control: RoomAccessControl | None = None,
        room_duration_hours: float = 24,
        custom_room_code: str | None = None,
        *,
        name: str = "",
        spectator_mode: SpectatorMode | str = SpectatorMode.LIVE_TRAINING,
        enable_metrics_overlay: bool = True,
        enable_performance_graphs: bool = True,
        enable_decision_visualization: bool = True,
    ) -> RoomInfo:
        """Create a room for a training session (created first when the caller has none by that id).

        ``creator_id`` naming another user needs a staff token. The returned ``room_password``
        is shown this once. Raises ``ValidationError`` naming the field, ``AccessDenied``.
        """
        access_control = access_control or RoomAccessControl()
        if not creator_id:
            await training_session_ensure(self.api, training_session_id)
        body = {
            "training_session_id": training_session_id,
            "name": name,
            "access_control": access_control.to_payload(),
            "room_duration_hours": room_duration_hours,
            "custom_room_code": custom_room_code,
            "spectator_mode": SpectatorMode(spectator_mode).value,
            "enable_metrics_overlay": enable_metrics_overlay,
            "enable_performance_graphs": enable_performance_graphs,
            "enable_decision_visualization": enable_decision_visualization,
        }
        if creator_id:
            body["creator_id"] = str(creator_id)
        return RoomInfo.from_api(await self.api.post("rooms/", body))

    async def get_room_info(self, room_code: str) -> RoomInfo:
        """Show a room by code or id; ``spectator_list`` is filled for its managers and present spectators.

        Raises ``RoomNotFound`` (also for private rooms the caller may not see).
        """
        room = await self.api.get(room_path(room_code))
        try:
            spectators = await self.list_spectators(room_code)
        except AccessDenied:
            spectators = []
        return RoomInfo.from_api(room, spectator_list=spectators)

    async def list_user_rooms(self, user_id: str | None = None, *, include_ended: bool = False) -> list[RoomInfo]:
        """List the rooms the caller manages (live ones unless ``include_ended``).

        ``user_id`` is accepted for the seed's signature; identity is the token's user.
        """
        rooms = await self.api.get_all("rooms/", include_ended="true" if include_ended else None)
        return [RoomInfo.from_api(room) for room in rooms]

    async def list_public_rooms(self) -> list[RoomInfo]:
        """List live public and password rooms."""
        return [RoomInfo.from_api(room) for room in await self.api.get_all("rooms/public/")]

    async def close_room(self, room_code: str, closer_id: str | None = None) -> RoomInfo:
        """Close a room: everyone leaves, pending requests expire. Idempotent.

        ``closer_id`` naming another user needs staff. Raises ``AccessDenied``, ``RoomNotFound``.
        """
        body = {"actor_id": str(closer_id)} if closer_id else {}
        return RoomInfo.from_api(await self.api.post(room_path(room_code, "close"), body))

    async def regenerate_password(self, room_code: str) -> str:
        """Give a password room a new password and return it (shown once)."""
        return (await self.api.post(room_path(room_code, "password")))["room_password"]

    async def update_access_control(self, room_code: str, **changes: Any) -> RoomInfo:
        """Change access settings (``access_level``, ``password``, ``max_spectators``, ``require_approval``…)."""
        body = {key: (value.value if hasattr(value, "value") else value) for key, value in changes.items()}
        if "allowed_users" in body:
            body["allowed_users"] = sorted(body["allowed_users"])
        return RoomInfo.from_api(await self.api.patch(room_path(room_code, "access"), body))

    # --- Joining ---------------------------------------------------------------------------

    async def join_room_request(
        self,
        room_code: str,
        user_id: str | None = None,
        user_name: str | None = None,
        password: str | None = None,
        user_metadata: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Ask to join a room: ``status`` is ``approved`` (with ``websocket_url``) or ``pending_approval``.

        Ask again to learn the outcome of a pending request. ``user_metadata["message"]`` is
        shown to the approver. Raises ``RoomNotFound``, ``InvalidPassword``, ``AccessDenied``,
        ``RoomFull``, ``RoomExpired``, ``RateLimited``.
        """
        message = str((user_metadata or {}).get("message", "")) if isinstance(user_metadata, dict) else ""
        return await room_join(
            self.api, room_code, display_name=user_name, password=password, message=message, user_id=user_id
        )

    async def leave_room(self, room_code: str, user_id: str | None = None) -> None:
        """Leave a room, freeing the seat; leaving a room you are not in is not an error.

        ``user_id`` is accepted for the seed's signature; identity is the token's user.
        """
        await room_leave(self.api, room_code)

    async def get_pending_approvals(self, room_code: str) -> list[dict[str, Any]]:
        """List the pending join requests of a room you manage."""
        return await self.api.get(room_path(room_code, "join-requests"), status="pending")

    async def approve_join_request(
        self, room_code: str, user_id: str | int, approver_id: str | None = None, approved: bool = True
    ) -> dict[str, Any]:
        """Approve (or, with ``approved=False``, deny) the pending request of ``user_id``.

        ``user_id`` is a username, an anonymous requester's display name, or a request id.
        Raises ``ValidationError`` (field ``user_id``) when there is no such pending request,
        ``AccessDenied`` unless you manage the room (or ``approver_id`` names another user
        without staff).
        """
        pending = await self.get_pending_approvals(room_code)
        match = next((r for r in pending if _request_matches(r, user_id)), None)
        if match is None:
            raise ValidationError(
                f"No pending join request from {user_id!r}.", fields={"user_id": ["No pending join request."]}
            )
        body = {"actor_id": str(approver_id)} if approver_id else {}
        action = "approve" if approved else "deny"
        return await self.api.post(room_path(room_code, "join-requests", match["request_id"], action), body)

    async def deny_join_request(self, room_code: str, user_id: str | int, approver_id: str | None = None):
        """Deny the pending request of ``user_id``."""
        return await self.approve_join_request(room_code, user_id, approver_id, approved=False)

    # --- Invitations, spectators, bans ----------------------------------------------------------

    async def invite_user(self, room_code: str, user_id: str, inviter_id: str | None = None) -> dict[str, Any]:
        """Invite a user by username (idempotent); invited users skip the password and approval."""
        body = {"username": str(user_id)}
        if inviter_id:
            body["actor_id"] = str(inviter_id)
        return await self.api.post(room_path(room_code, "invitations"), body)

    async def revoke_invitation(self, room_code: str, user_id: str) -> bool:
        """Revoke a user's invitation; False when there was none."""
        invitations = await self.api.get(room_path(room_code, "invitations"))
        match = next((i for i in invitations if i.get("username") == str(user_id)), None)
        if match is None:
            return False
        await self.api.delete(room_path(room_code, "invitations", match["invitation_id"]))
        return True

    async def list_spectators(self, room_code: str) -> list[dict[str, Any]]:
        """Who is watching; for the room's managers and its present spectators."""
        token = self.api.visitor_tokens.get(_ref_key(room_code))
        return await self.api.get(room_path(room_code, "spectators"), visitor_token=token)

    async def kick_spectator(self, room_code: str, spectator_id: int) -> dict[str, Any]:
        """Remove a present spectator now; they may join again."""
        return await self.api.post(room_path(room_code, "spectators", int(spectator_id), "kick"))

    async def block_user(
        self,
        room_code: str,
        user_id: str | int,
        blocker_id: str | None = None,
        reason: str = "",
        *,
        scope: str = "room",
    ) -> dict[str, Any]:
        """Ban a user (by username) or a present spectator (by spectator id, an int); they leave now.

        ``scope="owner"`` bans them from every room of this room's creator.
        """
        body: dict[str, Any] = {"reason": reason, "scope": scope}
        if isinstance(user_id, int) and not isinstance(user_id, bool):
            body["spectator_id"] = user_id
        else:
            body["username"] = str(user_id)
        if blocker_id:
            body["actor_id"] = str(blocker_id)
        return await self.api.post(room_path(room_code, "bans"), body)

    async def unblock_user(self, room_code: str, user_id: str) -> bool:
        """Lift a user's ban; False when there was none."""
        bans = await self.api.get(room_path(room_code, "bans"))
        match = next((b for b in bans if b.get("username") == str(user_id)), None)
        if match is None:
            return False
        await self.api.delete(room_path(room_code, "bans", match["ban_id"]))
        return True


def _request_matches(request: dict[str, Any], user_id: str | int) -> bool:
    if isinstance(user_id, int) and not isinstance(user_id, bool):
        return request.get("request_id") == user_id
    if request.get("username"):
        return request["username"] == str(user_id)
    return request.get("display_name") == str(user_id)
