"""Several WebSocket messages in one socket write, where the ASGI server allows it.

ASGI sends one message per ``send`` call, and uvicorn writes each to the socket at once: with
hundreds of spectators the fan-out's profile was half ``transport.write`` (one system call
and one loopback TCP segment per message). When the hub has several messages queued for a
connection, this writes their frames with a single ``transport.write``. Without a negotiated
extension (our servers run with per-message deflate off) a server frame is the same bytes for
every connection, so each message is framed once and the frame shared (``frame_of``).

It works only with uvicorn's ``websockets-sansio`` protocol (pinned in requirements.txt),
through its ``conn`` (a websockets ``ServerProtocol``) and ``transport``, and only in the
state where uvicorn's own ``send`` would write the frame directly: handshake done, not
closing, not disconnected, the transport not paused for flow control. In any other state,
and with any other server, ``batch_writer`` returns None or the writer returns None, and
the caller sends message by message through ASGI.
"""

from __future__ import annotations

from collections.abc import Callable

from websockets.frames import BINARY, TEXT, Frame
from websockets.protocol import OPEN

# Where a message keeps its serialized frame: the hub shares one message dict between all its
# connections, and a server frame without extensions is the same bytes for every one of them.
FRAME_KEY = "spectator.frame"


def frame_of(message: dict) -> bytes:
    """The unmasked WebSocket frame of a ``websocket.send`` message, serialized on first use."""
    frame = message.get(FRAME_KEY)
    if frame is None:
        data = message.get("bytes")
        if data is not None:
            frame = Frame(BINARY, data).serialize(mask=False)
        else:
            frame = Frame(TEXT, message["text"].encode()).serialize(mask=False)
        message[FRAME_KEY] = frame
    return frame


def batch_writer(send) -> Callable[[list[dict]], int | None] | None:
    """A function writing a list of ``websocket.send`` messages at once, or None if unsupported.

    The function returns the number of bytes written, or None when the connection is in a
    state where the caller must send through ASGI instead.
    """
    protocol = getattr(send, "__self__", None)
    conn = getattr(protocol, "conn", None)
    needed = ("transport", "disconnected", "close_sent", "handshake_complete", "initial_response", "writable")
    if (
        conn is None
        or not all(hasattr(protocol, name) for name in needed)
        or not hasattr(conn, "send_text")
        or not hasattr(conn, "send_binary")
        or not hasattr(conn, "data_to_send")
    ):
        return None

    def write(messages: list[dict]) -> int | None:
        transport = protocol.transport
        if (
            transport is None
            or protocol.disconnected
            or protocol.close_sent
            or not protocol.handshake_complete
            or protocol.initial_response is not None
            or not protocol.writable.is_set()
            or transport.is_closing()
        ):
            return None
        pending = conn.data_to_send()  # a pong websockets queued by itself goes first
        if conn.extensions or conn.state is not OPEN or conn.expect_continuation_frame:
            # Per-connection framing (a negotiated extension such as compression).
            for message in messages:
                data = message.get("bytes")
                if data is not None:
                    conn.send_binary(data)
                else:
                    conn.send_text(message["text"].encode())
            pending += conn.data_to_send()
        else:
            pending += [frame_of(message) for message in messages]
        data = b"".join(pending)
        transport.write(data)
        return len(data)

    return write
