"""Several WebSocket messages in one socket write, where the ASGI server allows it.

ASGI sends one message per ``send`` call, and uvicorn writes each to the socket at once: with
hundreds of spectators the fan-out's profile was half ``transport.write`` (one system call
and one loopback TCP segment per message). When the hub has several messages queued for a
connection, this writes their frames with a single ``transport.write``.

It works only with uvicorn's ``websockets-sansio`` protocol (pinned in requirements.txt),
through its ``conn`` (a websockets ``ServerProtocol``) and ``transport``, and only in the
state where uvicorn's own ``send`` would write the frame directly: handshake done, not
closing, not disconnected, the transport not paused for flow control. In any other state,
and with any other server, ``batch_writer`` returns None or the writer returns False, and
the caller sends message by message through ASGI.
"""

from __future__ import annotations

from collections.abc import Callable


def batch_writer(send) -> Callable[[list[dict]], bool] | None:
    """A function writing a list of ``websocket.send`` messages at once, or None if unsupported."""
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

    def write(messages: list[dict]) -> bool:
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
            return False
        for message in messages:
            data = message.get("bytes")
            if data is not None:
                conn.send_binary(data)
            else:
                conn.send_text(message["text"].encode())
        transport.write(b"".join(conn.data_to_send()))
        return True

    return write
