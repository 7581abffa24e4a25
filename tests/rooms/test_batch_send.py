"""Writing a connection's queued messages in one socket write (spectator_site.batch_send)."""

import asyncio

from uvicorn.config import Config
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState
from websockets.protocol import State

from spectator_site.batch_send import batch_writer


class FakeTransport:
    def __init__(self):
        self.writes: list[bytes] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closing


async def app(scope, receive, send):  # never called: the protocol is driven by hand
    raise AssertionError


def open_protocol():
    """A real uvicorn websocket protocol in the state after a completed handshake."""
    config = Config(app=app, ws="websockets-sansio", ws_per_message_deflate=False)
    config.load()
    protocol = WebSocketsSansIOProtocol(config, ServerState(), {}, _loop=asyncio.get_running_loop())
    protocol.transport = FakeTransport()
    protocol.handshake_complete = True
    protocol.conn.state = State.OPEN
    return protocol


def frames_of(data: bytes) -> list[tuple[int, bytes]]:
    """(opcode, payload) of each unmasked server frame (RFC 6455 5.2), parsed independently."""
    frames, offset = [], 0
    while offset < len(data):
        assert data[offset] & 0x80, "FIN set: one frame a message"
        opcode, length, start = data[offset] & 0x0F, data[offset + 1] & 0x7F, offset + 2
        assert not data[offset + 1] & 0x80, "server frames are not masked"
        if length == 126:
            length, start = int.from_bytes(data[offset + 2 : offset + 4], "big"), offset + 4
        elif length == 127:
            length, start = int.from_bytes(data[offset + 2 : offset + 10], "big"), offset + 10
        frames.append((opcode, data[start : start + length]))
        offset = start + length
    return frames


async def test_uvicorn_messages_go_out_in_one_write_in_order():
    protocol = open_protocol()
    write = batch_writer(protocol.send)
    assert write is not None
    messages = [{"type": "websocket.send", "text": f'{{"n":{n}}}'} for n in range(5)]
    messages.append({"type": "websocket.send", "bytes": b"\x00\x01frame"})
    assert write(messages) is True
    assert len(protocol.transport.writes) == 1
    frames = frames_of(protocol.transport.writes[0])
    assert frames == [(1, f'{{"n":{n}}}'.encode()) for n in range(5)] + [(2, b"\x00\x01frame")]


async def test_not_written_when_uvicorn_would_not_write_directly():
    for state in ("closing", "paused", "close_sent", "disconnected"):
        protocol = open_protocol()
        if state == "closing":
            protocol.transport.closing = True
        elif state == "paused":
            protocol.writable.clear()  # flow control: the transport's buffer is full
        else:
            setattr(protocol, state, True)
        assert batch_writer(protocol.send)([{"type": "websocket.send", "text": "x"}]) is False, state
        assert protocol.transport.writes == [], state


def test_other_servers_send_message_by_message():
    async def plain_send(message):
        pass

    assert batch_writer(plain_send) is None
    assert batch_writer(FakeTransport().write) is None
