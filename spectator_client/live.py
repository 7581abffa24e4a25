"""The room WebSocket: receive a room's live stream and hand every metric update to callbacks."""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import random
from collections import OrderedDict
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from spectator_client.errors import (
    AccessDenied,
    AuthenticationRequired,
    RateLimited,
    ServerUnavailable,
    SpectatorError,
    StreamBehind,
    error_for_close,
    error_for_response,
)
from spectator_client.frames import frame_parse
from spectator_client.models import MetricsData
from spectator_client.rooms import room_join
from spectator_client.transport import AsyncApi

logger = logging.getLogger("spectator_client")

# ``room_closed`` reasons, for a connection that broke before its close code arrived.
END_REASON_CLOSE_CODES = {"closed": 4410, "expired": 4410, "kicked": 4403, "banned": 4403}
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
SEEN_LIMIT = 100_000
# Consecutive refused tickets (4401) before giving up.
MAX_TICKET_FAILURES = 3

Callback = Callable[[Any], Any]


async def callback_call(callback: Callback, *args: Any) -> None:
    """Call a sync or async callback; its errors are logged, never raised into the stream."""
    try:
        result = callback(*args)
        if inspect.isawaitable(result):
            await result
    except Exception:
        logger.exception("spectator callback %r failed", callback)


class RoomListener:
    """One room's WebSocket: join for a ticket, connect, dispatch messages, reconnect when dropped.

    Metric points are told apart by ``(stream, seq)``, so a point is handed to the callbacks
    once even when a reconnect's snapshot repeats it; points missed while disconnected are
    delivered from that snapshot's history.
    """

    def __init__(
        self,
        api: AsyncApi,
        room_ref: str,
        *,
        display_name: str | None = None,
        password: str | None = None,
        max_hz: float | None = None,
        ready_timeout: float = 15.0,
        snapshot_grace: float = 3.0,
        backoff: tuple[float, float] = (0.5, 15.0),
        keepalive: float = 30.0,
    ):
        self.api = api
        self.room_ref = room_ref
        self.display_name = display_name
        self.password = password
        self.max_hz = max_hz
        self.ready_timeout = ready_timeout
        self.snapshot_grace = snapshot_grace
        self.backoff = backoff
        self.keepalive = keepalive
        self.metrics_callbacks: list[Callback] = []
        self.message_callbacks: list[Callback] = []
        self.error: SpectatorError | None = None
        self.current_metrics: MetricsData | None = None
        self.join_result: dict[str, Any] | None = None
        self.connects = 0
        self._seen: OrderedDict[tuple[str, int], None] = OrderedDict()
        self._task: asyncio.Task | None = None
        self._ready: asyncio.Future | None = None
        self._ws = None
        self._closing = False
        # Why the server ended our place in the room (``room_closed``'s reason: closed, expired, kicked, banned).
        self._end_reason: str | None = None
        self._had_snapshot = False
        self._had_snapshot_this_time = False

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Connect and wait for the room's snapshot; raises the typed error when the first connect fails."""
        self._ready = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._run(), name=f"spectator-room-{self.room_ref}")
        try:
            await asyncio.wait_for(asyncio.shield(self._ready), self.ready_timeout)
        except asyncio.TimeoutError:
            await self.stop()
            raise ServerUnavailable("Timed out connecting to the room's live stream.", code="timeout") from None
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        self._closing = True
        ws, self._ws = self._ws, None
        if ws is not None:
            with suppress(Exception):
                await asyncio.wait_for(ws.close(), 5)
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with suppress(asyncio.CancelledError, Exception):
                await self._task

    async def send(self, message: dict[str, Any]) -> None:
        """Send a control message (``set_speed``, ``ping``…) on the open connection."""
        if self._ws is None:
            raise ServerUnavailable("The room's live stream is not connected.", code="not_connected")
        await self._ws.send(json.dumps(message))

    # --- Connection loop -----------------------------------------------------------------------

    async def _run(self) -> None:
        delay = self.backoff[0]
        ticket_failures = 0
        while not self._closing:
            self._had_snapshot_this_time = False
            try:
                code, reason = await self._connect_once()
                error = None if self._closing else self._close_error(code, reason)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - every failure becomes a typed error below
                error = exc if isinstance(exc, SpectatorError) else ServerUnavailable(f"{type(exc).__name__}: {exc}")
            if self._closing:
                return
            if not self._ready.done():
                self._ready.set_exception(error or ServerUnavailable("The room's live stream closed at once."))
                return
            if self._had_snapshot_this_time:
                delay, ticket_failures = self.backoff[0], 0
            if isinstance(error, AuthenticationRequired):
                ticket_failures += 1
            if error is not None and (not _retryable(error) or ticket_failures >= MAX_TICKET_FAILURES):
                self.error = error
                logger.warning("room %s live stream stopped: %s", self.room_ref, error)
                return
            wait = max(delay, getattr(error, "retry_after", None) or 0)
            await asyncio.sleep(wait * random.uniform(0.5, 1.0))
            delay = min(delay * 2, self.backoff[1])

    def _close_error(self, code: int | None, reason: str) -> SpectatorError:
        if code is not None and code >= 4000:
            return error_for_close(code, self._end_reason or reason)
        if self._end_reason:
            return error_for_close(END_REASON_CLOSE_CODES.get(self._end_reason, 4410), self._end_reason)
        return ServerUnavailable(f"The live stream closed (code {code}).", code="disconnected", status=code)

    async def _connect_once(self) -> tuple[int | None, str]:
        join = await room_join(self.api, self.room_ref, display_name=self.display_name, password=self.password)
        if join.get("status") != "approved":
            raise AccessDenied("Waiting for the room owner's approval.", code="pending_approval", status=202)
        self.join_result = join
        loop = asyncio.get_running_loop()
        try:
            async with connect(
                join["websocket_url"],
                origin=self.api.config.origin,
                max_size=MAX_MESSAGE_BYTES,
                open_timeout=self.api.config.timeout,
                close_timeout=5,
            ) as ws:
                self._ws = ws
                self.connects += 1
                if self.max_hz:
                    await ws.send(json.dumps({"type": "set_speed", "max_hz": self.max_hz}))
                grace = loop.call_later(self.snapshot_grace, self._mark_ready)
                pinger = asyncio.create_task(self._keepalive(ws))
                try:
                    async for message in ws:
                        await self._dispatch(message)
                finally:
                    grace.cancel()
                    pinger.cancel()
                return ws.close_code, ws.close_reason or ""
        except ConnectionClosed as exc:
            frame = exc.rcvd
            return (frame.code, frame.reason) if frame is not None else (1006, "")
        except InvalidStatus as exc:
            status = exc.response.status_code
            # A refusal before the handshake completes reaches us as an HTTP status only.
            raise error_for_response(status, None, path="/ws/rooms/") from exc
        except (OSError, InvalidHandshake, asyncio.TimeoutError) as exc:
            raise ServerUnavailable(f"Could not open the room's live stream: {exc}", code="unreachable") from exc
        finally:
            self._ws = None

    async def _keepalive(self, ws) -> None:
        with suppress(Exception):
            while True:
                await asyncio.sleep(self.keepalive)
                await ws.send('{"type":"ping"}')

    def _mark_ready(self) -> None:
        if self._ready is not None and not self._ready.done():
            self._ready.set_result(None)

    # --- Messages --------------------------------------------------------------------------------

    async def _dispatch(self, raw: str | bytes) -> None:
        if isinstance(raw, bytes):
            try:
                header, image = frame_parse(raw)
            except ValueError:
                logger.warning("room %s: ignored a malformed binary message", self.room_ref)
                return
            message: dict[str, Any] = {**header, "type": "frame", "image": image}
        else:
            try:
                message = json.loads(raw)
            except ValueError:
                logger.warning("room %s: ignored a message that is not JSON", self.room_ref)
                return
            if not isinstance(message, dict):
                return
            kind = message.get("type")
            if kind == "training_metrics":
                data = message.get("data")
                for point in data if isinstance(data, list) else [data or {}]:
                    await self._deliver(point)
            elif kind == "snapshot":
                await self._snapshot(message)
            elif kind == "room_closed":
                self._end_reason = str(message.get("reason") or "closed")
            elif kind == "error":
                logger.warning(
                    "room %s: server error %s: %s", self.room_ref, message.get("code"), message.get("message")
                )
        for callback in list(self.message_callbacks):
            await callback_call(callback, message)

    async def _snapshot(self, message: dict[str, Any]) -> None:
        history = [point for point in message.get("history") or [] if isinstance(point, dict)]
        for point in history:
            if self._had_snapshot:
                # Reconnected: hand over what arrived while we were away.
                if _point_key(point) is not None:
                    await self._deliver(point)
            else:
                self._remember(point)
        current = message.get("current_metrics")
        if isinstance(current, dict) and self.current_metrics is None:
            self.current_metrics = MetricsData.from_dict(current)
        self._had_snapshot = True
        self._had_snapshot_this_time = True
        self._mark_ready()

    def _remember(self, point: dict[str, Any]) -> bool:
        """Record a point as seen; False when it was seen before."""
        key = _point_key(point)
        if key is None:
            return True
        if key in self._seen:
            return False
        self._seen[key] = None
        if len(self._seen) > SEEN_LIMIT:
            self._seen.popitem(last=False)
        return True

    async def _deliver(self, point: dict[str, Any]) -> None:
        if not self._remember(point):
            return
        metrics = MetricsData.from_dict(point)
        self.current_metrics = metrics
        for callback in list(self.metrics_callbacks):
            await callback_call(callback, metrics)


def _point_key(point: dict[str, Any]) -> tuple[str, int] | None:
    stream, seq = point.get("stream"), point.get("seq")
    if stream is None or seq is None:
        return None
    return (stream, seq)


def _retryable(error: Exception) -> bool:
    return isinstance(error, (ServerUnavailable, StreamBehind, RateLimited, AuthenticationRequired))
