"""One channel-layer channel per process and event loop, subscribed to the groups it serves.

The room hub (rooms/hub.py) and the replay coordinator (rooms/replay_player.py) both hold a
single channel for all their local sockets: they join a group while they have a local socket
for it, read their channel in one task, re-join now and then (channels-redis expires group
memberships) and, after the layer failed (Redis restarted and forgot every membership),
re-join everything and tell the subclass through ``rejoined``.

Cancellation is checked on the task, not on the exception's type: cancelling a read in the
middle of a Redis reply can surface as a connection error, and a loop that took it for an
outage would retry forever and hold up the event loop's shutdown.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Iterable

from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)

GROUP_REFRESH_SECONDS = 3600
RECOVERY_FIRST_DELAY = 0.5
RECOVERY_MAX_DELAY = 5.0


def cancel_requested() -> bool:
    """True when the current task was asked to stop (whatever exception that turned into)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class GroupSubscriber:
    """Subclasses name their channel prefix, list their groups and handle what arrives."""

    channel_prefix = "subscriber."
    label = "subscriber"

    def __init__(self):
        self.channel: str | None = None
        self._layer = None
        self._reader: asyncio.Task | None = None
        self._refresher: asyncio.Task | None = None
        self._lock = asyncio.Lock()

    # --- what subclasses provide -----------------------------------------------------------

    def subscribed_groups(self) -> Iterable[str]:
        """The groups this process must be in right now (called under the lock)."""
        raise NotImplementedError

    def dispatch(self, message: dict) -> None:
        raise NotImplementedError

    def rejoined(self) -> None:
        """The layer is back after a failure and every group is joined again."""

    def count_received(self) -> None:
        """One message read from the channel."""

    def count_layer_error(self) -> None:
        """One failed read or re-join."""

    # --- the machinery -----------------------------------------------------------------------

    async def ensure_channel(self) -> None:
        """Get a channel and start reading it (call under ``self._lock``)."""
        if self.channel is not None:
            return
        self._layer = get_channel_layer()
        self.channel = await self._layer.new_channel(self.channel_prefix)
        loop = asyncio.get_running_loop()
        # A fresh context: these serve every socket, not the one (and its log ids) that started them.
        self._reader = loop.create_task(self._read_loop(), name=f"{self.label}-reader", context=contextvars.Context())
        self._refresher = loop.create_task(
            self._refresh_loop(), name=f"{self.label}-refresher", context=contextvars.Context()
        )

    async def _read_loop(self) -> None:
        while True:
            try:
                message = await self._layer.receive(self.channel)
            except Exception:
                if cancel_requested():
                    raise asyncio.CancelledError from None
                # The channel layer (Redis) is unreachable: sockets stay up; recover when it is back.
                logger.warning("%s: channel layer receive failed; recovering", self.label, exc_info=True)
                self.count_layer_error()
                await self._recover()
                continue
            self.count_received()
            try:
                self.dispatch(message)
            except Exception:
                logger.exception("%s: could not dispatch %s", self.label, message.get("type"))

    async def _recover(self) -> None:
        delay = RECOVERY_FIRST_DELAY
        while True:
            await asyncio.sleep(delay)
            try:
                await self._join_all()
                break
            except Exception:
                if cancel_requested():
                    raise asyncio.CancelledError from None
                self.count_layer_error()
                delay = min(delay * 2, RECOVERY_MAX_DELAY)
        self.rejoined()

    async def _join_all(self) -> None:
        async with self._lock:
            for group in list(self.subscribed_groups()):
                await self._layer.group_add(group, self.channel)

    async def _refresh_loop(self) -> None:
        """Re-join our groups now and then: channels-redis expires group memberships."""
        while True:
            await asyncio.sleep(GROUP_REFRESH_SECONDS)
            try:
                await self._join_all()
            except Exception:
                if cancel_requested():
                    raise asyncio.CancelledError from None
                # The reader notices the outage too and re-joins once the layer is back.
                logger.warning("%s: could not refresh group memberships", self.label, exc_info=True)
                self.count_layer_error()

    async def aclose(self) -> None:
        """Stop reading (a test's or a server's event loop ending)."""
        tasks = [task for task in (self._reader, self._refresher) if task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._reader = self._refresher = None
        self.channel = None


def loop_singleton(registry: dict, factory):
    """The instance of ``registry`` for the running event loop, made with ``factory`` on first use."""
    loop = asyncio.get_running_loop()
    instance = registry.get(id(loop))
    if instance is None or getattr(instance, "_loop", None) is not loop:
        instance = factory()
        instance._loop = loop
        registry[id(loop)] = instance
    return instance
