"""Structured logs: request ids on HTTP, room and session ids on WebSocket log lines, JSON lines."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.db import OperationalError
from django.http import HttpResponse
from django.test import AsyncClient, Client
from django.urls import path

from rooms.access import Visitor
from rooms.services import room_join
from rooms.tickets import ticket_issue
from spectator_site.logging_context import (
    RECORD_ATTRIBUTE,
    JsonFormatter,
    log_context,
    log_context_bind,
    request_id_new,
)
from tests.support.live import close_thread_connections, receive_json, room_path, ws_open

HEX_ID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def json_lines():
    """What the root logger writes through the JSON formatter, one parsed object per line."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)

    def read() -> list[dict]:
        return [json.loads(line) for line in stream.getvalue().splitlines()]

    yield read
    root.removeHandler(handler)


# --- Request ids ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_request_id_is_generated_and_echoed(client):
    first = client.get("/metrics")["X-Request-ID"]
    second = client.get("/metrics")["X-Request-ID"]
    assert HEX_ID.fullmatch(first) and HEX_ID.fullmatch(second)
    assert first != second


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("incoming", "kept"),
    [
        ("4bf92f3577b34da6a3ce929d0e0e4736", True),
        ("req-2024.01:abc_DEF", True),
        ("bad id with spaces", False),
        ('"><script>alert(1)</script>', False),
        ("x" * 200, False),
        ("-leading-dash", False),
    ],
)
def test_a_sane_incoming_request_id_is_kept(client, incoming, kept):
    echoed = client.get("/metrics", HTTP_X_REQUEST_ID=incoming)["X-Request-ID"]
    if kept:
        assert echoed == incoming
    else:
        assert HEX_ID.fullmatch(echoed)


def _logging_view(request):
    logging.getLogger("spectator.test").warning("inside the view")
    return HttpResponse("ok")


async def _async_logging_view(request):
    logging.getLogger("spectator.test").warning("inside the view")
    return HttpResponse("ok")


urlpatterns = [path("sync/", _logging_view), path("async/", _async_logging_view)]


@pytest.mark.urls(__name__)
@pytest.mark.parametrize(("client_class", "url"), [(Client, "/sync/"), (AsyncClient, "/async/")], ids=["wsgi", "asgi"])
async def test_a_requests_log_lines_carry_its_request_id(client_class, url, json_lines):
    if client_class is AsyncClient:
        response = await AsyncClient().get(url, headers={"X-Request-ID": "trace-42"})
    else:
        response = await sync_to_async(Client().get)(url, headers={"X-Request-ID": "trace-42"})

    assert response.status_code == 200
    assert response["X-Request-ID"] == "trace-42"
    lines = [line for line in json_lines() if line["message"] == "inside the view"]
    assert len(lines) == 1, json_lines()
    line = lines[0]
    assert line["request_id"] == "trace-42"
    assert line["level"] == "WARNING"
    assert line["logger"] == "spectator.test"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", line["timestamp"])
    assert "room_id" not in line
    # Nothing leaks past the request.
    assert "request_id" not in log_context()


def test_exceptions_are_written_into_the_json_line(json_lines):
    try:
        raise OperationalError("connection refused")
    except OperationalError:
        logging.getLogger("spectator.test").exception("database down")
    (line,) = [line for line in json_lines() if line["message"] == "database down"]
    assert line["level"] == "ERROR"
    assert "OperationalError: connection refused" in line["exception"]


# --- Context across threads and tasks -------------------------------------------------------------


async def test_bound_ids_reach_sync_threads_and_new_tasks(caplog):
    import asyncio

    caplog.set_level(logging.INFO, logger="spectator.test")
    log_context_bind(request_id="r-1", room_code="ABCDEF")

    await sync_to_async(lambda: logging.getLogger("spectator.test").info("in a thread"))()
    await asyncio.get_running_loop().create_task(_log_in_task())

    contexts = {record.getMessage(): getattr(record, RECORD_ATTRIBUTE) for record in caplog.records}
    assert contexts["in a thread"] == {"request_id": "r-1", "room_code": "ABCDEF"}
    assert contexts["in a task"] == {"request_id": "r-1", "room_code": "ABCDEF"}


async def _log_in_task():
    logging.getLogger("spectator.test").info("in a task")


def test_extra_given_to_a_call_wins_over_the_bound_ids():
    log_context_bind(room_id="bound")
    record = logging.getLogger("spectator.test").makeRecord(
        "spectator.test", logging.INFO, __file__, 1, "hello %s", ("there",), None, extra={"room_id": "explicit"}
    )
    line = json.loads(JsonFormatter().format(record))
    assert line["room_id"] == "explicit"
    assert line["message"] == "hello there"


def test_request_id_new_replaces_missing_ids():
    assert HEX_ID.fullmatch(request_id_new(None))
    assert HEX_ID.fullmatch(request_id_new(""))


# --- WebSocket consumers ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_room_socket_log_lines_carry_room_and_session_ids(make_room, make_user, caplog):
    caplog.set_level(logging.DEBUG, logger="spectator_site.logging_context")
    room = await database_sync_to_async(make_room)()

    def admit():
        result = room_join(room=room, visitor=Visitor(user=make_user("ann")))
        return ticket_issue(room_id=room.pk, spectator_id=result.spectator.pk)

    ticket = await database_sync_to_async(admit)()
    communicator = await ws_open(room_path(room.code, ticket))
    communicator.scope["headers"].append((b"x-request-id", b"ignored-after-connect"))
    try:
        assert (await receive_json(communicator))["type"] == "graph_config"
    finally:
        await communicator.disconnect()
        await close_thread_connections()

    closed = [record for record in caplog.records if record.getMessage().startswith("websocket closed")]
    assert len(closed) == 1
    context = getattr(closed[0], RECORD_ATTRIBUTE)
    assert context["room_id"] == str(room.pk)
    assert context["room_code"] == room.code
    assert context["training_session_id"] == room.training_session_id
    assert HEX_ID.fullmatch(context["request_id"])
    line = json.loads(JsonFormatter().format(closed[0]))
    assert line["room_code"] == room.code and line["room_id"] == str(room.pk)


@pytest.mark.django_db(transaction=True)
async def test_ingest_socket_log_lines_carry_the_session_and_the_handshakes_request_id(
    owner, make_token, training_session, caplog
):
    from channels.testing import WebsocketCommunicator

    from spectator_site.asgi import application

    caplog.set_level(logging.DEBUG, logger="spectator_site.logging_context")
    token = await database_sync_to_async(make_token)(owner)
    communicator = WebsocketCommunicator(
        application,
        f"/ws/ingest/{training_session.pk}/",
        headers=[
            (b"origin", b"http://localhost"),
            (b"authorization", f"Bearer {token}".encode()),
            (b"x-request-id", b"trainer-run-7"),
        ],
    )
    connected, _ = await communicator.connect(timeout=3)
    assert connected
    await communicator.disconnect()
    await close_thread_connections()

    closed = [record for record in caplog.records if record.getMessage().startswith("websocket closed")]
    assert len(closed) == 1
    context = getattr(closed[0], RECORD_ATTRIBUTE)
    assert context == {"request_id": "trainer-run-7", "training_session_id": training_session.pk}
