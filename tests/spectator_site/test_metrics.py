"""``/metrics``: the Prometheus exposition, who may read it, and counters that move with real traffic."""

from __future__ import annotations

import socket
import sys

import pytest
from channels.db import database_sync_to_async
from channels.layers import channel_layers
from django.db import OperationalError, connection
from prometheus_client.parser import text_string_to_metric_families

from metrics.events import publish_stream
from rooms import events as room_events
from rooms import hub as hub_module
from rooms.access import Visitor
from rooms.hub import RoomHub, get_hub
from rooms.services import room_join
from rooms.tickets import ticket_issue
from spectator_site.observability import HubTotals
from tests.support.live import close_thread_connections, point, receive_json, receive_type, room_path, ws_open

pytestmark = pytest.mark.django_db(transaction=True)

OUR_FAMILIES = {
    "spectator_ws_messages_sent": "counter",
    "spectator_ws_sent_bytes": "counter",
    "spectator_hub_received": "counter",
    "spectator_hub_deliveries": "counter",
    "spectator_hub_coalesced": "counter",
    "spectator_hub_dropped": "counter",
    "spectator_hub_too_slow_closed": "counter",
    "spectator_ingest_batches": "counter",
    "spectator_ingest_points": "counter",
    "spectator_ingest_batch_seconds": "histogram",
    "spectator_database_errors": "counter",
    "spectator_channel_layer_errors": "counter",
    "spectator_local_connections": "gauge",
    "spectator_room_spectators": "gauge",
    "spectator_python_allocated_blocks": "gauge",
}


def scrape(client=None, **extra) -> dict[tuple[str, tuple], float]:
    """Every sample of ``/metrics`` (read from loopback), keyed by name and sorted labels."""
    from django.test import Client

    response = (client or Client()).get("/metrics", **extra)
    assert response.status_code == 200, response.content
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def fresh_channel_layers():
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


# --- The exposition ----------------------------------------------------------------------------


def test_the_interpreters_allocated_blocks_follow_what_it_holds(client):
    before = value(scrape(client), "spectator_python_allocated_blocks")
    held = [object() for _ in range(200_000)]
    during = value(scrape(client), "spectator_python_allocated_blocks")
    del held

    assert during - before > 150_000


def test_exposition_parses_with_our_families_and_types(client):
    response = client.get("/metrics")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    assert "sessionid" not in response.cookies
    families = {family.name: family.type for family in text_string_to_metric_families(response.content.decode())}
    for name, kind in OUR_FAMILIES.items():
        assert families.get(name) == kind, (name, families.get(name))
    if sys.platform.startswith("linux"):
        for name in ("process_resident_memory_bytes", "process_open_fds", "process_cpu_seconds"):
            assert name in families, name
        samples = scrape(client)
        assert value(samples, "process_resident_memory_bytes") > 0
        assert value(samples, "process_open_fds") > 0


def test_openmetrics_on_request(client):
    response = client.get("/metrics", HTTP_ACCEPT="application/openmetrics-text; version=1.0.0")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/openmetrics-text")
    assert response.content.decode().rstrip().endswith("# EOF")


# --- Who may read it ----------------------------------------------------------------------------


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "::ffff:127.0.0.1"])
def test_loopback_is_allowed(client, address):
    assert client.get("/metrics", REMOTE_ADDR=address).status_code == 200


@pytest.mark.parametrize("address", ["10.1.2.3", "192.0.2.7", "2001:db8::1", "", "not-an-address"])
def test_other_addresses_are_refused_with_json(client, address):
    response = client.get("/metrics", REMOTE_ADDR=address)

    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"
    assert b"spectator_" not in response.content


@pytest.mark.parametrize("header", ["HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP"])
def test_a_request_forwarded_by_a_proxy_on_loopback_is_refused(client, header):
    # Through a reverse proxy on the same host the socket address is loopback: the caller is not.
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1", **{header: "203.0.113.9"})
    assert response.status_code == 403


def test_allow_list_takes_networks(client, settings):
    settings.SPECTATOR_METRICS_ALLOW = ["10.0.0.0/8", "192.0.2.7"]

    assert client.get("/metrics", REMOTE_ADDR="10.200.3.4").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.7").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.8").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403


def test_token_opens_it_from_anywhere(client, settings):
    settings.SPECTATOR_METRICS_TOKEN = "scrape-me-7f3a"
    outside = {"REMOTE_ADDR": "203.0.113.9", "HTTP_X_FORWARDED_FOR": "203.0.113.9"}

    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-me-7f3a", **outside).status_code == 200
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-me-7f3b", **outside).status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Basic scrape-me-7f3a", **outside).status_code == 403
    assert client.get("/metrics", **outside).status_code == 403


def test_no_token_configured_means_no_token_opens_it(client, settings):
    settings.SPECTATOR_METRICS_TOKEN = ""
    response = client.get("/metrics", REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION="Bearer ")
    assert response.status_code == 403


# --- Counters that move -------------------------------------------------------------------------


def test_an_ingest_batch_moves_the_ingest_counters(client, owner, make_token, api_client, training_session):
    api = api_client(token=make_token(owner))
    url = f"/api/v1/sessions/{training_session.pk}/ingest/"
    before = scrape(client)

    assert api.post(url, {"points": [point(1), point(2), point(3)]}, format="json").status_code == 200
    assert api.post(url, {"points": [point(3), point(4)]}, format="json").status_code == 200
    assert api.post(url, {"points": [point(5), {"stream": "t", "seq": "x"}]}, format="json").status_code == 400
    after = scrape(client)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("spectator_ingest_batches_total") == 2
    assert delta("spectator_ingest_points_total", result="accepted") == 4
    assert delta("spectator_ingest_points_total", result="duplicate") == 1
    assert delta("spectator_ingest_points_total", result="rejected") == 2
    assert delta("spectator_ingest_batch_seconds_count") == 2
    assert delta("spectator_ingest_batch_seconds_sum") > 0


async def test_a_websocket_batch_refused_as_invalid_counts_its_points(owner, make_token, training_session):
    token = await database_sync_to_async(make_token)(owner)
    before = await database_sync_to_async(scrape)()
    communicator = await ws_open(f"/ws/ingest/{training_session.pk}/", token=token)
    try:
        await communicator.send_json_to({"type": "metrics", "ref": 1, "points": [point(1), {"seq": -1}, point(3)]})
        assert (await receive_json(communicator))["type"] == "error"
        await communicator.send_json_to({"type": "metrics", "ref": 2, "points": [point(1)]})
        assert (await receive_json(communicator))["type"] == "ack"
    finally:
        await communicator.disconnect()
        await close_thread_connections()
    after = await database_sync_to_async(scrape)()

    rejected = ("spectator_ingest_points_total", {"result": "rejected"})
    accepted = ("spectator_ingest_points_total", {"result": "accepted"})
    assert value(after, rejected[0], **rejected[1]) - value(before, rejected[0], **rejected[1]) == 3
    assert value(after, accepted[0], **accepted[1]) - value(before, accepted[0], **accepted[1]) == 1


def _admit(room, username, make_user):
    result = room_join(room=room, visitor=Visitor(user=make_user(username)))
    return ticket_issue(room_id=room.pk, spectator_id=result.spectator.pk)


def _ingest(training_session, points) -> None:
    from metrics.ingest import metric_points_clean
    from metrics.services import metric_points_append

    metric_points_append(training_session=training_session, points=metric_points_clean(points))


async def test_a_spectator_delivery_moves_messages_and_bytes_out_and_the_room_gauge(
    make_room, make_user, training_session
):
    room = await database_sync_to_async(make_room)()
    ticket = await database_sync_to_async(_admit)(room, "ann", make_user)
    communicator = await ws_open(room_path(room.code, ticket))
    try:
        received = [await communicator.receive_from(3), await communicator.receive_from(3)]  # config, snapshot
        before = await database_sync_to_async(scrape)()
        assert value(before, "spectator_room_spectators", room_code=room.code) == 1
        assert value(before, "spectator_local_connections") >= 1

        await database_sync_to_async(_ingest)(training_session, [point(1), point(2)])
        for _ in range(3):  # each point's training_metrics, then the batch's graph_update
            received.append(await communicator.receive_from(3))
        # The pong is written after everything queued before it: those sends have all completed.
        await communicator.send_json_to({"type": "ping", "t": 1})
        await receive_type(communicator, "pong", skip=("spectator_list", "training_metrics", "graph_update"))
        after = await database_sync_to_async(scrape)()
    finally:
        await communicator.disconnect()
        await close_thread_connections()

    sent = value(after, "spectator_ws_messages_sent_total") - value(before, "spectator_ws_messages_sent_total")
    sent_bytes = value(after, "spectator_ws_sent_bytes_total") - value(before, "spectator_ws_sent_bytes_total")
    assert sent >= 3
    assert sent_bytes >= sum(len(text) for text in received[2:])
    assert value(after, "spectator_hub_received_total") > value(before, "spectator_hub_received_total")
    assert value(after, "spectator_hub_deliveries_total") - value(before, "spectator_hub_deliveries_total") >= 3

    gone = await database_sync_to_async(scrape)()
    assert ("spectator_room_spectators", (("room_code", room.code),)) not in gone


async def test_hub_channel_layer_failures_are_exported():
    hub = get_hub()
    before = await database_sync_to_async(scrape)()
    hub.stats.layer_errors += 2
    after = await database_sync_to_async(scrape)()

    name, labels = "spectator_channel_layer_errors_total", {"operation": "hub"}
    assert value(after, name, **labels) - value(before, name, **labels) == 2


def test_hub_counters_never_go_down_when_a_hub_is_replaced(monkeypatch):
    hubs = {}
    monkeypatch.setattr(hub_module, "_hubs", hubs)
    totals = HubTotals()
    first = RoomHub()
    first.stats.sent, first.stats.bytes_out = 5, 500
    hubs[-1] = first
    assert totals.read()["sent"] == 5

    # The event loop went away and a new one (with a new hub) took its slot.
    second = RoomHub()
    second.stats.sent, second.stats.bytes_out = 2, 40
    hubs[-1] = second
    read = totals.read()

    assert read["sent"] == 7
    assert read["bytes_out"] == 540


def _closed_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_publish_failures_count_channel_layer_errors(client, settings, fresh_channel_layers, room_for_publish):
    before = scrape(client)
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [f"redis://127.0.0.1:{_closed_loopback_port()}/0"]},
        }
    }
    channel_layers.backends.clear()

    publish_stream("cartpole-dqn", [("metrics", "{}")])
    room_events.publish(room_for_publish.pk, {"type": "room_closed", "room_code": room_for_publish.code})

    channel_layers.backends.clear()
    after = scrape(client)
    name, labels = "spectator_channel_layer_errors_total", {"operation": "publish"}
    assert value(after, name, **labels) - value(before, name, **labels) == 2


@pytest.fixture
def room_for_publish(make_room):
    return make_room()


def test_a_health_check_failing_on_the_database_counts_an_error(client, monkeypatch):
    before = scrape(client)

    # The database server is outside the project: make it refuse as a dead one would.
    def refuse(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(connection, "cursor", refuse)
    assert client.get("/healthz").status_code == 503
    monkeypatch.undo()
    after = scrape(client)

    name, labels = "spectator_database_errors_total", {"error": "OperationalError"}
    assert value(after, name, **labels) - value(before, name, **labels) == 1


def test_a_failed_query_counts_a_database_error(client):
    before = scrape(client)
    with pytest.raises(Exception) as raised, connection.cursor() as cursor:
        cursor.execute("SELECT * FROM no_such_table_for_metrics")
    after = scrape(client)

    name, labels = "spectator_database_errors_total", {"error": type(raised.value).__name__}
    assert value(after, name, **labels) - value(before, name, **labels) == 1
