"""Watch a room's live stream from a background thread while the test's own thread trains.

``RoomWatch`` joins the room with the client package (anonymously unless given a token),
collects every live message, and lets the test wait, bounded by a timeout, until what it
needs has arrived: waiting on the messages themselves, never on a sleep.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from spectator_client import SpectatorManager


class RoomWatch:
    def __init__(self, server_url: str, room_code: str, *, token: str = "", ready_timeout: float = 20.0):
        self.server_url = server_url
        self.room_code = room_code
        self.token = token
        self.ready_timeout = ready_timeout
        self.messages: list[dict[str, Any]] = []
        self._changed = threading.Condition()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name=f"room-watch-{room_code}", daemon=True)

    def __enter__(self) -> RoomWatch:
        self._thread.start()
        if not self._ready.wait(self.ready_timeout):
            raise AssertionError(f"could not watch room {self.room_code} within {self.ready_timeout}s")
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=15)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        with self._changed:
            return [message for message in self.messages if message.get("type") == kind]

    def wait_for(
        self, predicate: Callable[[list[dict[str, Any]]], Any], timeout: float = 30.0, what: str = "messages"
    ) -> Any:
        """Wait until ``predicate(messages)`` is truthy and return its value; fail after ``timeout`` seconds."""
        with self._changed:
            result = self._changed.wait_for(lambda: predicate(self.messages), timeout)
            if not result:
                kinds = sorted({str(message.get("type")) for message in self.messages})
                raise AssertionError(f"timed out after {timeout}s waiting for {what}; got types {kinds}")
            return result

    def wait_for_types(self, *kinds: str, timeout: float = 30.0) -> None:
        wanted = set(kinds)
        self.wait_for(lambda messages: wanted <= {m.get("type") for m in messages}, timeout, f"types {sorted(wanted)}")

    def _add(self, message: dict[str, Any]) -> None:
        with self._changed:
            self.messages.append(message)
            self._changed.notify_all()

    def _run(self) -> None:
        asyncio.run(self._watch())

    async def _watch(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            async with SpectatorManager(self.server_url, self.token) as manager:
                try:
                    await manager.register_message_callback(self.room_code, self._add)
                except BaseException as exc:
                    self._error = exc
                    return
                finally:
                    self._ready.set()
                await self._stop.wait()
        finally:
            self._ready.set()
