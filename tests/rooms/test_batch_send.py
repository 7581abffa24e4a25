"""Writing a connection's queued messages in one socket write (spectator_site.batch_send)."""

import asyncio

from uvicorn.config import Config
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState
from websockets.protocol import State

from spectator_site import batch_send
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
    written = write(messages)
    assert len(protocol.transport.writes) == 1
    assert written == len(protocol.transport.writes[0])
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
        assert batch_writer(protocol.send)([{"type": "websocket.send", "text": "x"}]) is None, state
        assert protocol.transport.writes == [], state


async def test_each_message_is_framed_once_for_every_connection(monkeypatch):
    serialized = []

    class CountingFrame(batch_send.Frame):
        def serialize(self, **kwargs):
            serialized.append(self.data)
            return super().serialize(**kwargs)

    monkeypatch.setattr(batch_send, "Frame", CountingFrame)
    messages = [{"type": "websocket.send", "text": "é-1"}, {"type": "websocket.send", "bytes": b"\x00"}]
    protocols = [open_protocol() for _ in range(3)]
    for protocol in protocols:
        batch_writer(protocol.send)(messages)

    assert serialized == ["é-1".encode(), b"\x00"]
    assert {protocol.transport.writes[0] for protocol in protocols} == {protocols[0].transport.writes[0]}
    assert frames_of(protocols[0].transport.writes[0]) == [(1, "é-1".encode()), (2, b"\x00")]


async def test_a_connection_with_compression_gets_its_own_compressed_frames():
    from websockets.extensions.permessage_deflate import PerMessageDeflate

    plain, compressed = open_protocol(), open_protocol()
    compressed.conn.extensions = [PerMessageDeflate(False, False, 15, 15)]
    message = {"type": "websocket.send", "text": "a" * 200}
    batch_writer(plain.send)([message])
    batch_writer(compressed.send)([message])

    data = compressed.transport.writes[0]
    assert data[0] & 0x40, "RSV1: the payload is compressed"
    assert len(data) < len(plain.transport.writes[0])
    assert not plain.transport.writes[0][0] & 0x40


async def test_a_pong_websockets_queued_goes_out_before_the_messages():
    protocol = open_protocol()
    protocol.conn.send_pong(b"p")
    batch_writer(protocol.send)([{"type": "websocket.send", "text": "m"}])

    assert frames_of(protocol.transport.writes[0]) == [(0xA, b"p"), (1, b"m")]


def test_other_servers_send_message_by_message():
    async def plain_send(message):
        pass

    assert batch_writer(plain_send) is None
    assert batch_writer(FakeTransport().write) is None


# --- the hub writing straight to an idle live connection (rooms.hub.Connection.write_now) ---


def hub_connection(protocol, **kwargs):
    from rooms.hub import Connection

    connection = Connection(
        protocol.send, room_id="r", training_session_id="s", spectator_id=1, is_manager=False, **kwargs
    )
    connection.start()
    return connection


def items(*texts, kind="metric"):
    from rooms.hub import send_message

    return [(kind, send_message(text)) for text in texts]


async def test_an_idle_live_connection_is_written_at_once_without_its_writer():
    protocol = open_protocol()
    connection = hub_connection(protocol)
    await asyncio.sleep(0)  # the writer waits for work

    assert connection.write_now(items("a", "b")) is True
    assert [payload for _op, payload in frames_of(b"".join(protocol.transport.writes))] == [b"a", b"b"]
    assert connection.delivered == 2
    await connection.stop()


async def test_queued_work_rate_limits_and_pauses_keep_the_queue_and_its_order():
    from rooms.hub import KIND_DECISION

    protocol = open_protocol()
    behind = hub_connection(protocol)
    behind.push("metric", items("queued")[0][1])  # the writer has not run yet
    assert behind.write_now(items("later")) is False

    limited = hub_connection(open_protocol())
    limited.set_speed(2.0)
    assert limited.write_now(items("x")) is False

    paused_protocol = open_protocol()
    paused = hub_connection(paused_protocol)
    paused_protocol.writable.clear()
    assert paused.write_now(items("x")) is False
    assert paused_protocol.transport.writes == []

    hidden_protocol = open_protocol()
    hidden = hub_connection(hidden_protocol, show_decisions=False)
    assert hidden.write_now(items("d", kind=KIND_DECISION) + items("m")) is True
    assert [payload for _op, payload in frames_of(b"".join(hidden_protocol.transport.writes))] == [b"m"]
    for connection in (behind, limited, paused, hidden):
        await connection.stop()


async def test_not_before_the_snapshot_went_out():
    from rooms.hub import Connection

    protocol = open_protocol()
    connection = Connection(protocol.send, room_id="r", training_session_id="s", spectator_id=1, is_manager=False)
    assert connection.write_now(items("x")) is False  # not started: its snapshot goes first


async def test_a_stopped_connection_is_freed_without_the_garbage_collector():
    import gc
    import weakref

    connection = hub_connection(open_protocol())
    await asyncio.sleep(0)  # the writer waits for work
    await connection.stop()
    freed = weakref.ref(connection)
    gc.disable()
    try:
        del connection
        assert freed() is None, "a reference cycle keeps the stopped connection alive"
    finally:
        gc.enable()
