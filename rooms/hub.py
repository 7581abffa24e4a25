"""The per-process room hub (DESIGN.md section 4a).

A process holds one channel-layer channel for its hub and joins each room group and
training-session group once, while it has local spectators there. Every message arrives
already serialized; the hub hands the same text (or bytes) to each local connection, which
applies its spectator's speed: metric points and control messages are queued in order and
never dropped; decisions and frames are coalesced latest-wins (a live spectator that keeps up
gets every decision). Control messages go out without waiting for a rate-limited spectator's
tick. A connection whose queue grows past ``SPECTATOR_MAX_BUFFERED_MESSAGES`` is told it fell
behind and closed; nothing more is queued for it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict, deque
from dataclasses import dataclass, field

from django.conf import settings

from metrics.events import KIND_CONTROL, KIND_DECISION, KIND_FRAME, session_group_name
from rooms.events import AUDIENCE_ALL, AUDIENCE_MANAGERS, AUDIENCE_SPECTATOR, room_group_name
from rooms.subscriber import GroupSubscriber, loop_singleton
from spectator_site.batch_send import batch_writer

logger = logging.getLogger(__name__)

CLOSE_TOO_SLOW = 4408
# The standard "service restart" code: reconnect (and catch up from the snapshot).
CLOSE_SERVICE_RESTART = 1012
MAX_HZ = 60.0
# A live spectator gets every decision while its queue is shorter than this; further behind, the latest.
LIVE_DECISION_BACKLOG = 1000
# Queued messages written to a socket at once (see spectator_site.batch_send).
MAX_BATCH = 64


@dataclass
class HubStats:
    delivered: int = 0
    coalesced: int = 0
    dropped: int = 0
    too_slow_closed: int = 0
    received: int = 0
    layer_errors: int = 0
    # Handed to the server's send: messages, and their text characters or binary bytes.
    sent: int = 0
    bytes_out: int = 0


class Connection:
    """One local spectator socket as the hub sees it: a send queue and a writer task."""

    def __init__(
        self, send, *, room_id, training_session_id, spectator_id, is_manager, show_decisions=True, stats=None
    ):
        self._send = send
        self._batch_write = batch_writer(send)
        self._behind = False
        self.room_id = str(room_id)
        self.training_session_id = training_session_id
        self.spectator_id = spectator_id
        self.is_manager = is_manager
        self.show_decisions = show_decisions
        self.interval = 0.0  # seconds between flushes; 0 = live
        self.fifo: deque = deque()
        self.latest: dict[str, object] = {}
        self.coalesced = 0
        self.delivered = 0
        self.closed = False
        self._close_code: int | None = None
        self._wake = asyncio.Event()
        # Set by a control message, a close or a new speed: the writer does not wait for the tick.
        self._urgent = asyncio.Event()
        self._stats = stats or HubStats()
        self._task: asyncio.Task | None = None
        self._flushing = False
        # Read once: a settings lookup per delivery cost ~10% of the hub's time with 1,000 spectators.
        self._max_buffered = settings.SPECTATOR_MAX_BUFFERED_MESSAGES
        self._live_backlog = min(LIVE_DECISION_BACKLOG, self._max_buffered // 2)

    # --- the hub side -------------------------------------------------------------------

    @property
    def closing(self) -> bool:
        """Closed, or told to close: nothing more is queued."""
        return self.closed or self._close_code is not None

    def push(self, kind: str, message: dict) -> None:
        """Queue one ASGI send message (built once per item by the hub); never blocks."""
        if self.closing:
            if not self.closed:
                self._stats.dropped += 1
            return
        if kind == KIND_DECISION and not self.show_decisions:
            return
        if kind == KIND_DECISION and not self.interval and len(self.fifo) < self._live_backlog:
            # Live and keeping up: every decision, in order with the metric points around it.
            if self.latest.pop(kind, None) is not None:
                self.coalesced += 1
                self._stats.coalesced += 1
            self.fifo.append(message)
        elif kind in (KIND_DECISION, KIND_FRAME):
            if kind in self.latest:
                self.coalesced += 1
                self._stats.coalesced += 1
            self.latest[kind] = message
        else:
            self.fifo.append(message)
            if len(self.fifo) > self._max_buffered:
                self._fell_behind()
                return
        self._wake.set()

    def write_now(self, items: list[tuple[str, dict]]) -> bool:
        """Write a live, idle connection's share of ``items`` straight to its socket.

        Waking a writer task per connection and message cost more than the write itself with
        1,000 spectators; a live connection with nothing queued and no flush under way gets the
        write at once, in the order a flush would have used. False: queue them instead.
        """
        if (
            self.interval
            or self.fifo
            or self.latest
            or self._flushing
            or self._task is None
            or self._batch_write is None
            or self.closing
        ):
            return False
        show_decisions = self.show_decisions
        messages = [payload for kind, payload in items if show_decisions or kind != KIND_DECISION]
        if not messages:
            return True
        try:
            written = self._batch_write(messages)
        except Exception:
            # The writer task meets the same failure on its own send and ends the connection.
            logger.debug("direct write for spectator %s failed", self.spectator_id, exc_info=True)
            return False
        if written is None:
            return False
        self.delivered += len(messages)
        stats = self._stats
        stats.sent += len(messages)
        stats.bytes_out += written
        return True

    def push_now(self, payload) -> None:
        """Queue a control message (text, or an ASGI send message) that goes out without waiting for the tick."""
        if self.closing:
            return
        self.fifo.append(payload if isinstance(payload, dict) else send_message(payload))
        self._urgent.set()
        self._wake.set()

    def close_after_flush(self, code: int) -> None:
        """Send what is queued, then close with ``code`` (the first close asked for wins)."""
        if self.closing:
            return
        self._close_code = code
        self._urgent.set()
        self._wake.set()

    def _fell_behind(self) -> None:
        self._behind = True
        self._stats.too_slow_closed += 1
        self._stats.dropped += len(self.fifo)
        self.fifo.clear()
        self.latest.clear()
        error = {
            "type": "error",
            "code": "too_slow",
            "message": "This connection fell too far behind the stream; reconnect to catch up from history.",
        }
        self.fifo.append(send_message(json.dumps(error)))
        self.close_after_flush(CLOSE_TOO_SLOW)

    # --- the connection side ------------------------------------------------------------

    def set_speed(self, max_hz: float | None) -> None:
        """``None`` is live; otherwise flush at most ``max_hz`` times a second."""
        self.interval = 0.0 if not max_hz else 1.0 / min(float(max_hz), MAX_HZ)
        self._urgent.set()
        self._wake.set()

    def start(self, first=()) -> None:
        """Start writing, ``first`` (pre-serialized) ahead of whatever was queued since attaching."""
        self.fifo.extendleft(reversed([send_message(payload) for payload in first]))
        self._wake.set()
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"spectator-writer-{self.spectator_id}")

    async def stop(self) -> None:
        self.closed = True
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
            # Waits without raising the writer's end, yet lets our own cancellation through.
            await asyncio.wait([self._task])
        # A cancelled task keeps its exception, whose traceback holds the writer's frame and so
        # this connection: dropping the task leaves no cycle for the garbage collector to find.
        self._task = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_flush = 0.0
        try:
            while not self.closed:
                await self._wake.wait()
                self._wake.clear()
                delay = next_flush - loop.time() if self.interval else 0.0
                if delay > 0 and not self._urgent.is_set():
                    # Rate limiting by design: the spectator asked for at most max_hz flushes.
                    try:
                        await asyncio.wait_for(self._urgent.wait(), delay)
                    except TimeoutError:
                        pass
                self._urgent.clear()
                due = not self.interval or loop.time() >= next_flush or self._close_code is not None
                # Early (a pong, a room event): queued messages go now, decisions and frames at the tick.
                self._flushing = True
                try:
                    await self._flush(include_latest=due)
                finally:
                    self._flushing = False
                if due:
                    next_flush = loop.time() + self.interval
                elif self.latest:
                    self._wake.set()
                if self._close_code is not None:
                    await self._send({"type": "websocket.close", "code": self._close_code})
                    self.closed = True
        except asyncio.CancelledError:
            raise
        except Exception:
            # The socket went away under us; the consumer's disconnect cleans up.
            logger.debug("writer for spectator %s stopped", self.spectator_id, exc_info=True)
            self.closed = True

    async def _flush(self, include_latest: bool = True) -> None:
        fifo = self.fifo
        batch = [fifo.popleft() for _ in range(min(len(fifo), MAX_BATCH))]
        while batch:
            await self._write(batch)
            batch = [fifo.popleft() for _ in range(min(len(fifo), MAX_BATCH))]
        if self.latest and include_latest:
            latest, self.latest = self.latest, {}
            await self._write(list(latest.values()))

    async def _write(self, messages: list[dict]) -> None:
        """Write the messages in order: in one socket write where the server allows it."""
        written = self._batch_write(messages) if self._batch_write is not None else None
        if written is None:
            send = self._send
            for index, message in enumerate(messages):
                if index and self._behind:
                    # Fell behind while this batch was going out: the rest is dropped like the queue.
                    self._stats.dropped += len(messages) - index
                    messages = messages[:index]
                    break
                await send(message)
            written = sum(len(message.get("text") or message.get("bytes") or "") for message in messages)
        self.delivered += len(messages)
        stats = self._stats
        stats.sent += len(messages)
        stats.bytes_out += written


def send_message(payload) -> dict:
    """The ASGI ``websocket.send`` message for a serialized text or bytes payload.

    Built once per item and shared by every local connection: the server only reads it.
    """
    if isinstance(payload, (bytes, bytearray)):
        return {"type": "websocket.send", "bytes": bytes(payload)}
    return {"type": "websocket.send", "text": payload}


@dataclass
class _RoomEntry:
    training_session_id: str
    connections: set = field(default_factory=set)


class RoomHub(GroupSubscriber):
    """One per process and event loop: subscriptions, local connections, dispatch."""

    channel_prefix = "hub."
    label = "room hub"

    def __init__(self):
        super().__init__()
        self.stats = HubStats()
        self.rooms: dict[str, _RoomEntry] = {}
        self.session_rooms: dict[str, set[str]] = defaultdict(set)
        # The last decision and frame of each subscribed session: a spectator who connects
        # while the trainer is quiet (paused, between episodes) still sees the game at once.
        self.last_shown: dict[str, dict[str, dict]] = {}
        # Latest-wins room events (the spectator list): rooms inside their interval, and the event held back.
        self._latest_wins_interval = settings.SPECTATOR_LIST_INTERVAL
        self._throttled: dict[str, asyncio.TimerHandle] = {}
        self._held: dict[str, dict] = {}

    def _make_connection(self, send, **kwargs) -> Connection:
        return Connection(send, stats=self.stats, **kwargs)

    async def attach(
        self, send, *, room_id, training_session_id, spectator_id, is_manager, show_decisions=True, start=True
    ):
        """Register a local connection; join the room's and session's groups on first use.

        With ``start=False`` messages queue until ``connection.start(first=...)``: a consumer
        subscribes first, then reads its snapshot, so the snapshot goes out first and nothing
        published in between is lost.
        """
        room_id = str(room_id)
        connection = self._make_connection(
            send,
            room_id=room_id,
            training_session_id=training_session_id,
            spectator_id=spectator_id,
            is_manager=is_manager,
            show_decisions=show_decisions,
        )
        async with self._lock:
            await self.ensure_channel()
            entry = self.rooms.get(room_id)
            if entry is None:
                entry = self.rooms[room_id] = _RoomEntry(training_session_id=training_session_id)
                await self._layer.group_add(room_group_name(room_id), self.channel)
            if not self.session_rooms[training_session_id]:
                await self._layer.group_add(session_group_name(training_session_id), self.channel)
            self.session_rooms[training_session_id].add(room_id)
            entry.connections.add(connection)
            for kind, message in self.last_shown.get(training_session_id, {}).items():
                if kind != KIND_DECISION or show_decisions:
                    connection.latest.setdefault(kind, message)
        if start:
            connection.start()
        return connection

    async def detach(self, connection: Connection) -> None:
        """Forget a connection; leave the groups nobody local needs any more."""
        await connection.stop()
        async with self._lock:
            entry = self.rooms.get(connection.room_id)
            if entry is None:
                return
            entry.connections.discard(connection)
            if entry.connections:
                return
            del self.rooms[connection.room_id]
            await self._layer.group_discard(room_group_name(connection.room_id), self.channel)
            rooms = self.session_rooms.get(entry.training_session_id, set())
            rooms.discard(connection.room_id)
            if not rooms:
                self.session_rooms.pop(entry.training_session_id, None)
                self.last_shown.pop(entry.training_session_id, None)
                await self._layer.group_discard(session_group_name(entry.training_session_id), self.channel)

    def local_connections(self, room_id=None) -> int:
        if room_id is not None:
            entry = self.rooms.get(str(room_id))
            return len(entry.connections) if entry else 0
        return sum(len(entry.connections) for entry in self.rooms.values())

    def present_spectator_ids(self) -> set[int]:
        return {c.spectator_id for entry in self.rooms.values() for c in entry.connections}

    # --- the channel (rooms/subscriber.py) ------------------------------------------------

    def subscribed_groups(self):
        for room_id in self.rooms:
            yield room_group_name(room_id)
        for session_id in self.session_rooms:
            yield session_group_name(session_id)

    def count_received(self) -> None:
        self.stats.received += 1

    def count_layer_error(self) -> None:
        self.stats.layer_errors += 1

    def rejoined(self) -> None:
        """A restarted Redis forgot our memberships and lost what was published while it was down.

        Each local connection is closed with 1012 (service restart); its client reconnects and
        catches up from the snapshot's history.
        """
        resynced = 0
        for entry in list(self.rooms.values()):
            for connection in list(entry.connections):
                connection.close_after_flush(CLOSE_SERVICE_RESTART)
                resynced += 1
        logger.warning("room hub: channel layer back; %d local spectator(s) asked to reconnect", resynced)

    def dispatch(self, message: dict) -> None:
        """Hand one group message to every local connection it is for."""
        kind = message.get("type")
        if kind == "stream.items":
            self._dispatch_stream(message)
        elif kind == "room.event":
            self._dispatch_room_event(message)

    def _dispatch_stream(self, message: dict) -> None:
        items = [(kind, send_message(payload)) for kind, payload in message["items"]]
        session_id = _session_of(message)
        room_ids = self.session_rooms.get(session_id, ())
        if room_ids:
            for kind, item in items:
                if kind in (KIND_DECISION, KIND_FRAME):
                    self.last_shown.setdefault(session_id, {})[kind] = item
        for room_id in room_ids:
            entry = self.rooms.get(room_id)
            if entry is None:
                continue
            for connection in entry.connections:
                if not connection.write_now(items):
                    for kind, payload in items:
                        if kind == KIND_CONTROL:
                            connection.push_now(payload)
                        else:
                            connection.push(kind, payload)
                self.stats.delivered += len(items)

    def _dispatch_room_event(self, message: dict) -> None:
        room_id = message.get("room_id")
        if message.get("latest_wins") and room_id in self.rooms:
            # At most one such event per room and interval goes out; the newest held one follows.
            if room_id in self._throttled:
                self._held[room_id] = message
                return
            loop = asyncio.get_running_loop()
            self._throttled[room_id] = loop.call_later(self._latest_wins_interval, self._release, room_id)
        self._deliver_room_event(room_id, message)

    def _release(self, room_id: str) -> None:
        self._throttled.pop(room_id, None)
        held = self._held.pop(room_id, None)
        if held is not None:
            self._dispatch_room_event(held)

    def _deliver_room_event(self, room_id, message: dict) -> None:
        entries = [self.rooms[room_id]] if room_id in self.rooms else []
        audience = message.get("audience", AUDIENCE_ALL)
        text = send_message(message["text"])
        for entry in entries:
            for connection in list(entry.connections):
                if audience == AUDIENCE_MANAGERS and not connection.is_manager:
                    continue
                if audience == AUDIENCE_SPECTATOR and connection.spectator_id != message.get("spectator_id"):
                    continue
                connection.push_now(text)
                self.stats.delivered += 1
                if message.get("close_code"):
                    connection.close_after_flush(message["close_code"])


def _session_of(message: dict) -> str:
    return message.get("training_session_id", "")


_hubs: dict[int, RoomHub] = {}


def get_hub() -> RoomHub:
    """The hub of the running event loop (one per process in a server)."""
    return loop_singleton(_hubs, RoomHub)
