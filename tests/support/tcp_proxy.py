"""A loopback TCP proxy a test can cut and restore: a database or a server "goes away".

``cut()`` drops every open connection and refuses new ones (connections are accepted and
closed at once, as a crashed peer would); ``restore()`` forwards again. With several
``targets`` it balances new connections round-robin over the ones that accept, the way a
reverse proxy fails over when a server process dies.
"""

from __future__ import annotations

import asyncio
import itertools
import threading

from tests.support.servers import free_port


class TcpProxy:
    def __init__(self, *targets: tuple[str, int]):
        self.targets = list(targets)
        self.port = free_port()
        self._order = itertools.cycle(range(len(self.targets)))
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcp-proxy", daemon=True)
        self._server: asyncio.AbstractServer | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._cut = False
        self.connections = 0
        # WebSocket connections (``GET /ws/…``) open now, per target: which server holds the spectators.
        self.websockets_per_target = [0] * len(self.targets)

    def start(self) -> TcpProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(10)
        return self

    def stop(self) -> None:
        async def close():
            self._server.close()
            for writer in list(self._open):
                writer.close()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def cut(self) -> None:
        """Drop every connection now and refuse the next ones until ``restore()``."""

        async def drop():
            self._cut = True
            for writer in list(self._open):
                writer.transport.abort()
            self._open.clear()

        asyncio.run_coroutine_threadsafe(drop(), self._loop).result(10)

    def restore(self) -> None:
        self._loop.call_soon_threadsafe(setattr, self, "_cut", False)

    async def _serve(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._cut:
            writer.transport.abort()
            return
        first = await reader.read(65536)
        upstream = await self._connect() if first else None
        if upstream is None:
            writer.transport.abort()
            return
        self.connections += 1
        index, up_reader, up_writer = upstream
        websocket = first.startswith(b"GET /ws/")
        self.websockets_per_target[index] += websocket
        self._open.update((writer, up_writer))
        up_writer.write(first)
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True)
        self._open.difference_update((writer, up_writer))
        self.websockets_per_target[index] -= websocket

    async def _connect(self):
        for _ in range(len(self.targets)):
            index = next(self._order)
            host, port = self.targets[index]
            try:
                return (index, *await asyncio.open_connection(host, port))
            except OSError:
                continue
        return None

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.transport.abort() if self._cut else writer.close()

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
