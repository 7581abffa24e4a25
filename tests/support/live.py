"""Helpers for WebSocket consumer tests: open sockets, read typed messages, check refusals.

Every helper waits on a message (bounded by a timeout), never on a sleep.
"""

from __future__ import annotations

import json
import struct
import time
from importlib import import_module

from channels.testing import WebsocketCommunicator
from django.conf import settings

from spectator_site.asgi import application

ORIGIN = (b"origin", b"http://localhost")
TIMEOUT = 3


def room_path(code: str, ticket: str | None = None) -> str:
    return f"/ws/rooms/{code}/" + (f"?ticket={ticket}" if ticket else "")


async def ws_open(path: str, *, cookie: str | None = None, token: str | None = None) -> WebsocketCommunicator:
    """Connect like a browser (``Origin``), with a session cookie or a bearer token when given."""
    headers = [ORIGIN]
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    if token:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, _subprotocol = await communicator.connect(timeout=TIMEOUT)
    assert connected, path
    return communicator


async def receive_json(communicator, timeout: float = TIMEOUT) -> dict:
    return json.loads(await communicator.receive_from(timeout))


async def receive_type(communicator, wanted: str, timeout: float = TIMEOUT, *, skip=("spectator_list",)) -> dict:
    """The next message of type ``wanted``, passing over only the types in ``skip``."""
    while True:
        message = await receive_json(communicator, timeout)
        if message["type"] == wanted:
            return message
        assert message["type"] in skip, (wanted, message)


async def expect_refused(communicator, code: str, close_code: int) -> dict:
    """An ``error`` naming ``code``, then the close ``close_code``; disconnects."""
    try:
        error = await receive_json(communicator)
        assert error["type"] == "error" and error["code"] == code, error
        assert isinstance(error["message"], str) and error["message"], error
        assert await communicator.receive_output(TIMEOUT) == {"type": "websocket.close", "code": close_code}
        return error
    finally:
        await communicator.disconnect()


async def expect_closed(communicator, close_code: int) -> None:
    assert await communicator.receive_output(TIMEOUT) == {"type": "websocket.close", "code": close_code}


def point(seq: int, stream: str = "t", **fields) -> dict:
    """A valid MetricsData point for ingest."""
    data = {"stream": stream, "seq": seq, "timestamp": 1_700_000_000.0 + seq, "episode": seq}
    data.setdefault("current_reward", float(seq))
    data.update(fields)
    return data


def frame_bytes(header: dict, image: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack(">I", len(raw)) + raw + image


def frame_split(data: bytes) -> tuple[dict, bytes]:
    (length,) = struct.unpack(">I", data[:4])
    return json.loads(data[4 : 4 + length]), data[4 + length :]


PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def login_cookie(user) -> str:
    """A session cookie signed in as ``user`` (sync: call through database_sync_to_async)."""
    from django.test import Client

    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def anonymous_cookie(visitor_token: str) -> str:
    """A session cookie of an anonymous browser holding ``visitor_token`` (as the join API leaves it)."""
    from rooms.api.views import ANON_SESSION_KEY

    store = import_module(settings.SESSION_ENGINE).SessionStore()
    store[ANON_SESSION_KEY] = visitor_token
    store.create()
    return f"{settings.SESSION_COOKIE_NAME}={store.session_key}"


def old_ticket(*, room_id, spectator_id: int, age: int = 3600) -> str:
    """A genuine ticket issued ``age`` seconds ago."""
    from django.core import signing

    from rooms import tickets

    class PastSigner(signing.TimestampSigner):
        def timestamp(self):
            return signing.b62_encode(int(time.time()) - age)

    return PastSigner(salt=tickets._SALT).sign_object({"r": str(room_id), "s": spectator_id}, compress=True)


async def close_thread_connections() -> None:
    """Close the database connection of the thread ``database_sync_to_async`` runs in.

    It outlives the test otherwise (``CONN_MAX_AGE``) and PostgreSQL cannot drop the test database.
    """
    from channels.db import database_sync_to_async
    from django.db import connections

    await database_sync_to_async(connections.close_all)()
