"""The room WebSocket: ``/ws/rooms/<ROOM_CODE>/``.

The consumer owns a connection's life: admission (join ticket or browser session), the
documented close codes, the snapshot, speed settings and owner moderation. The live stream
itself reaches the socket through the process's room hub (``rooms.hub``), not through a
per-consumer channel-layer group.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, ValidationError

from metrics import selectors as metric_selectors
from metrics.events import graph_config_message, metrics_data
from metrics.replay import ReplayError
from rooms import access, events, moderation, selectors, services
from rooms.access import AccessRefused, Refusal, RoomNotFound
from rooms.api.views import session_visitor
from rooms.hub import get_hub
from rooms.models import JoinRequest, Spectator
from rooms.replay_player import ReplayPlayer
from rooms.tickets import InvalidTicket, ticket_read
from spectator_site.logging_context import LogContextConsumerMixin, log_context_bind
from spectator_site.raw_send import RAW_SEND_KEY

logger = logging.getLogger(__name__)

CLOSE_BAD_REQUEST = 4400
CLOSE_SIGN_IN = 4401
CLOSE_REFUSED = 4403
CLOSE_NOT_FOUND = 4404
CLOSE_FULL = 4409
CLOSE_GONE = 4410
CLOSE_RATE_LIMITED = 4429

REFUSAL_CLOSE_CODES = {
    Refusal.NOT_FOUND: CLOSE_NOT_FOUND,
    Refusal.CLOSED: CLOSE_GONE,
    Refusal.EXPIRED: CLOSE_GONE,
    Refusal.FULL: CLOSE_FULL,
    Refusal.SIGN_IN_REQUIRED: CLOSE_SIGN_IN,
}
MAX_CLIENT_MESSAGE = 4096
HEARTBEAT_SECONDS = 20
# Client messages a connection may send per second before it is closed with 4429.
CLIENT_MESSAGES_PER_SECOND = 20


class RoomConsumer(LogContextConsumerMixin, AsyncWebsocketConsumer):
    # No per-connection channel: the hub holds the process's one subscription per room.
    channel_layer_alias = "__spectator_no_layer__"

    async def connect(self):
        self.connection = None
        self.room = None
        self.spectator = None
        self._message_times: list[float] = []
        # Accept first so the client sees the close code (a refused handshake is only an HTTP 403).
        await self.accept()
        code = self.scope["url_route"]["kwargs"]["room_code"]
        try:
            self.room, self.spectator, self.is_manager = await database_sync_to_async(self._admit)(code)
        except AccessRefused as exc:
            await self._refuse(exc.refusal.value, str(exc), REFUSAL_CLOSE_CODES.get(exc.refusal, CLOSE_REFUSED))
            return
        except _NeedsTicket as exc:
            await self._refuse("ticket_required", str(exc), CLOSE_SIGN_IN)
            return
        room = self.room
        log_context_bind(room_id=room.pk, room_code=room.code, training_session_id=room.training_session_id)
        hub = get_hub()
        self.connection = await hub.attach(
            self.scope.get(RAW_SEND_KEY, self.base_send),
            room_id=self.room.pk,
            training_session_id=self.room.training_session_id,
            spectator_id=self.spectator.pk,
            is_manager=self.is_manager,
            show_decisions=self.room.enable_decision_visualization,
            start=False,
        )
        try:
            snapshot = await database_sync_to_async(self._snapshot)()
        except BaseException:
            await hub.detach(self.connection)
            self.connection = None
            raise
        # Subscribed before reading the snapshot, started after: the snapshot goes first and
        # nothing published meanwhile is lost (a point may come twice; its (stream, seq) tells).
        self.connection.start(first=[json.dumps(message, separators=(",", ":")) for message in snapshot])
        _heartbeat_ensure()

    async def _refuse(self, code: str, message: str, close_code: int) -> None:
        await self.send(text_data=json.dumps({"type": "error", "code": code, "message": message}))
        await self.close(code=close_code)

    # --- admission (sync, in a thread) -------------------------------------------------------

    def _admit(self, code: str):
        user = self.scope.get("user")
        ticket = parse_qs(self.scope.get("query_string", b"").decode()).get("ticket", [""])[0]
        if ticket:
            # The ticket's holder, not the socket's session, is who connects (API clients send no
            # cookie): a private room is visible to a valid ticket, and room_reconnect re-checks access.
            room = selectors.room_get_by_ref(code)
            if room is None:
                raise RoomNotFound()
            try:
                parsed = ticket_read(ticket, room_id=room.pk)
            except InvalidTicket:
                if not access.can_see_room(user, room):
                    raise RoomNotFound() from None
                raise _NeedsTicket("The join ticket is invalid or expired; join again.") from None
            spectator = services.room_reconnect(room=room, spectator_id=parsed.spectator_id)
        else:
            room = access.room_get_visible(code, user)
            visitor = session_visitor(user, self.scope.get("session"))
            spectator = access.current_spectator(room, visitor)
            if spectator is not None:
                spectator = services.room_reconnect(room=room, spectator_id=spectator.pk)
            elif visitor.signed_in and access.can_manage_room(user, room):
                spectator = services.room_join(room=room, visitor=visitor).spectator
            else:
                raise _NeedsTicket("Join the room first (POST /api/v1/rooms/<code>/join/) and connect with its ticket.")
        manager = spectator.user_id is not None and access.can_manage_room(spectator.user, room)
        return room, spectator, manager

    def _snapshot(self) -> list[dict]:
        room = self.room
        session = room.training_session
        session.refresh_from_db(fields=["extra_keys", "status", "algorithm", "total_episodes"])
        history = [metrics_data(row) for row in metric_selectors.metric_points_recent(session.pk)]
        spectator_list = events.spectator_list(room.pk)
        snapshot = {
            "type": "snapshot",
            "room": {
                "room_id": str(room.pk),
                "room_code": room.code,
                "name": room.name,
                "spectator_mode": room.spectator_mode,
                "enable_metrics_overlay": room.enable_metrics_overlay,
                "enable_performance_graphs": room.enable_performance_graphs,
                "enable_decision_visualization": room.enable_decision_visualization,
                "expires_at": room.expires_at.isoformat(),
            },
            "training_session": {
                "id": session.pk,
                "name": session.name,
                "algorithm": session.algorithm,
                "total_episodes": session.total_episodes,
                "status": session.status,
            },
            "viewer": {
                "spectator_id": self.spectator.pk,
                "display_name": self.spectator.display_name,
                "is_manager": self.is_manager,
            },
            "current_metrics": history[-1] if history else None,
            "history": history,
            "spectators": spectator_list["spectators"],
            "spectator_count": spectator_list["count"],
        }
        if self.is_manager:
            snapshot["pending_requests"] = [
                events.join_request_entry(jr)
                for jr in selectors.join_request_list(room, status=JoinRequest.Status.PENDING)
            ]
        return [graph_config_message(session.extra_keys), snapshot]

    # --- messages from the spectator -------------------------------------------------------

    async def receive(self, text_data=None, bytes_data=None):
        if self.connection is None or self.connection.closing:
            return
        if self._rate_limited():
            # Through the writer, so the error and the close come after what is already queued.
            await self._error("rate_limited", "Too many messages; slow down.")
            self.connection.close_after_flush(CLOSE_RATE_LIMITED)
            return
        if bytes_data is not None or text_data is None or len(text_data) > MAX_CLIENT_MESSAGE:
            await self._error("bad_request", f"Send JSON text messages of at most {MAX_CLIENT_MESSAGE} bytes.")
            return
        try:
            message = json.loads(text_data)
        except (json.JSONDecodeError, RecursionError):  # RecursionError: "[[[[…" nested past the decoder's limit
            await self._error("bad_request", "Messages must be JSON objects.")
            return
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            await self._error("bad_request", "Messages must be JSON objects with a string 'type'.")
            return
        handler = self.HANDLERS.get(message["type"])
        if handler is None:
            await self._error("unknown_type", f"Unknown message type {message['type'][:40]!r}.")
            return
        await handler(self, message)

    def _rate_limited(self) -> bool:
        now = asyncio.get_running_loop().time()
        self._message_times = [t for t in self._message_times if now - t < 1.0]
        self._message_times.append(now)
        return len(self._message_times) > CLIENT_MESSAGES_PER_SECOND

    async def _error(self, code: str, message: str, **extra) -> None:
        self.connection.push_now(json.dumps({"type": "error", "code": code, "message": message, **extra}))

    async def _on_ping(self, message):
        self.connection.push_now(json.dumps({"type": "pong", "t": message.get("t")}))

    async def _on_set_speed(self, message):
        if message.get("mode") == "live":
            self.connection.set_speed(None)
            speed = {"mode": "live"}
        else:
            max_hz = message.get("max_hz")
            if isinstance(max_hz, bool) or not isinstance(max_hz, (int, float)) or not 0.1 <= max_hz <= 60:
                await self._error(
                    "bad_request", "set_speed needs mode 'live' or max_hz between 0.1 and 60.", field="max_hz"
                )
                return
            self.connection.set_speed(max_hz)
            speed = {"mode": "limited", "max_hz": max_hz}
        self.connection.push_now(json.dumps({"type": "speed", **speed}))

    async def _on_moderate(self, message):
        """Owner actions: approve / deny a request or admit all, kick / ban / time out a spectator or
        send them back to the waiting room."""
        if not self.is_manager:
            await self._error("forbidden", "Only the room's managers can do this.")
            return
        field = "request_id" if message["type"] in ("approve", "deny") else "spectator_id"
        needed = {"admit_all": (), "timeout": (field, "duration_seconds")}.get(message["type"], (field,))
        for name in needed:
            value = message.get(name)
            if isinstance(value, bool) or not isinstance(value, int):
                await self._error("bad_request", f"{message['type']} needs an integer {name}.", field=name)
                return
        try:
            await database_sync_to_async(self._moderate)(message)
        except ObjectDoesNotExist:
            await self._error("bad_request", f"No such {field.removesuffix('_id')} in this room.", field=field)
        except ValidationError as exc:
            await self._error("bad_request", " ".join(exc.messages))
        except (PermissionDenied, ValueError, LookupError) as exc:
            await self._error("bad_request", str(exc))

    def _moderate(self, message) -> None:
        user = self.spectator.user
        action = message.get("type")
        ip = (self.scope.get("client") or [None])[0]
        if action == "admit_all":
            moderation.join_requests_admit_all(room=self.room, actor=user, ip=ip)
            return
        if action in ("approve", "deny"):
            join_request = JoinRequest.objects.select_related("room").get(
                pk=int(message.get("request_id")), room=self.room
            )
            services.join_request_decide(join_request=join_request, approver=user, approved=action == "approve", ip=ip)
            return
        target = Spectator.objects.select_related("room", "user").get(
            pk=int(message.get("spectator_id")), room=self.room, left_at__isnull=True
        )
        reason = str(message.get("reason", ""))[:500]
        if action == "kick":
            services.spectator_kick(spectator=target, actor=user, ip=ip)
        elif action == "send_to_waiting":
            moderation.spectator_send_to_waiting(spectator=target, actor=user, ip=ip)
        elif action == "timeout":
            moderation.timeout_create(
                room=self.room,
                actor=user,
                spectator=target,
                duration_seconds=message["duration_seconds"],
                reason=reason,
                ip=ip,
            )
        else:
            services.ban_create(room=self.room, actor=user, spectator=target, reason=reason, ip=ip)

    async def _on_replay(self, message):
        """Replay controls (``rooms.replay_player``): this spectator's own player, leading, following."""
        player = getattr(self, "replay", None)
        if player is None:
            player = self.replay = ReplayPlayer(
                self.connection,
                room_id=self.room.pk,
                training_session_id=self.room.training_session_id,
                spectator_id=self.spectator.pk,
                display_name=self.spectator.display_name,
                is_manager=self.is_manager,
                show_decisions=self.room.enable_decision_visualization,
            )
        try:
            await player.handle(message)
        except ReplayError as exc:
            await self._error("bad_request", exc.message, field=exc.field)

    HANDLERS = {
        "ping": _on_ping,
        "set_speed": _on_set_speed,
        "approve": _on_moderate,
        "deny": _on_moderate,
        "kick": _on_moderate,
        "ban": _on_moderate,
        "admit_all": _on_moderate,
        "send_to_waiting": _on_moderate,
        "timeout": _on_moderate,
        "replay": _on_replay,
    }

    async def disconnect(self, code):
        if self.connection is None:
            return
        if getattr(self, "replay", None) is not None:
            await self.replay.close()
        hub = get_hub()
        await hub.detach(self.connection)
        self.connection = None
        # Free the seat unless another socket of the same spectator (a second tab) is here.
        if self.spectator is not None and self.spectator.pk not in hub.present_spectator_ids():
            await database_sync_to_async(_leave)(self.spectator.pk)


class _NeedsTicket(Exception):
    pass


def _leave(spectator_id: int) -> None:
    spectator = Spectator.objects.select_related("room").filter(pk=spectator_id, left_at__isnull=True).first()
    if spectator is not None:
        services.room_leave(spectator=spectator)


_heartbeat_task: asyncio.Task | None = None


def _heartbeat_ensure() -> None:
    """Start the presence heartbeat of this process once: seen-now for every local spectator."""
    global _heartbeat_task
    loop = asyncio.get_running_loop()
    if _heartbeat_task is None or _heartbeat_task.done() or _heartbeat_task.get_loop() is not loop:
        # A fresh context: the heartbeat serves every local spectator, not the one that started it.
        _heartbeat_task = loop.create_task(_heartbeat(), name="presence-heartbeat", context=contextvars.Context())


async def _heartbeat() -> None:
    hub = get_hub()
    while hub.local_connections():
        await asyncio.sleep(min(HEARTBEAT_SECONDS, settings.SPECTATOR_PRESENCE_TIMEOUT / 3))
        try:
            await database_sync_to_async(services.spectators_touch)(spectator_ids=hub.present_spectator_ids())
        except Exception:
            logger.warning("presence heartbeat failed; retrying", exc_info=True)
