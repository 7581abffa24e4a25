"""The admin's live resource page and its JSON endpoint: staff only, the numbers, escaped user text."""

from __future__ import annotations

import re

import pytest
from channels.db import database_sync_to_async
from django.test import Client

from rooms.access import Visitor
from rooms.services import room_join
from rooms.tickets import ticket_issue
from spectator_site.resources import RATE_COUNTERS, UsageSampler
from tests.support.live import close_thread_connections, receive_json, room_path, ws_open

PAGE = "/admin/resources/"
JSON = "/admin/resources.json"


@pytest.fixture
def staff_client(make_user):
    client = Client()
    client.force_login(make_user("operator", staff=True))
    return client


@pytest.mark.django_db
def test_the_page_and_its_data_need_staff(client, make_user):
    response = client.get(PAGE)
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    assert client.get(JSON).status_code == 403

    client.force_login(make_user("visitor"))
    response = client.get(PAGE)
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    response = client.get(JSON)
    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"


@pytest.mark.django_db
def test_the_admin_index_links_to_the_page(staff_client):
    response = staff_client.get("/admin/")
    assert response.status_code == 200
    assert f'href="{PAGE}"' in response.content.decode()


@pytest.mark.django_db
def test_the_page_renders_with_its_script_and_no_inline_script(staff_client):
    response = staff_client.get(PAGE)

    assert response.status_code == 200
    body = response.content.decode()
    assert "Live resource usage" in body
    assert re.search(r'<script type="module" src="/static/spectator/admin_resources\.js"></script>', body)
    assert f'data-usage-url="{JSON}"' in body
    for tag in re.findall(r"<script\b[^>]*>", body):
        assert "src=" in tag or "application/json" in tag, tag
    assert response["Cache-Control"].startswith("max-age=0") or "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_the_json_returns_the_process_figures(staff_client):
    data = staff_client.get(JSON).json()

    assert isinstance(data["pid"], int) and data["pid"] > 0
    assert data["uptime_seconds"] >= 0
    assert data["cpu_seconds"] > 0
    assert data["rss_bytes"] is None or data["rss_bytes"] > 0
    assert data["open_fds"] is None or data["open_fds"] > 0
    assert set(RATE_COUNTERS) <= set(data["counters"])
    assert data["local_connections"] >= 0 and isinstance(data["rooms"], list)
    assert "rates" in data and data["poll_seconds"] > 0


@pytest.mark.django_db(transaction=True)
async def test_connected_spectators_show_per_room_with_escaped_names(make_room, make_user):
    room = await database_sync_to_async(make_room)(name='<script>alert("x")</script>')
    operator = await database_sync_to_async(make_user)("operator", staff=True)

    def admit():
        result = room_join(room=room, visitor=Visitor(user=make_user("ann")))
        return ticket_issue(room_id=room.pk, spectator_id=result.spectator.pk)

    def staff_get(path):
        client = Client()
        client.force_login(operator)
        return client.get(path)

    ticket = await database_sync_to_async(admit)()
    communicator = await ws_open(room_path(room.code, ticket))
    try:
        assert (await receive_json(communicator))["type"] == "graph_config"
        assert (await receive_json(communicator))["type"] == "snapshot"
        data = (await database_sync_to_async(staff_get)(JSON)).json()
        page = (await database_sync_to_async(staff_get)(PAGE)).content.decode()
    finally:
        await communicator.disconnect()
        await close_thread_connections()

    (listed,) = [entry for entry in data["rooms"] if entry["room_code"] == room.code]
    assert listed["spectators"] == 1
    assert listed["name"] == '<script>alert("x")</script>'
    assert listed["admin_url"] == f"/admin/rooms/room/{room.pk}/change/"
    assert data["local_connections"] >= 1
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert '<script>alert("x")</script>' not in page


# --- Rates from counter samples (the clock is ours) ------------------------------------------------


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def counters(**values) -> dict:
    return {name: values.get(name, 0) for name in RATE_COUNTERS}


def test_rates_come_from_the_latest_interval_of_at_least_the_minimum():
    clock = FakeClock()
    sampler = UsageSampler(clock=clock, min_interval=1.0)

    assert sampler.sample(cpu_seconds=10.0, counters=counters(messages_sent=0, bytes_sent=0)) is None
    clock.now += 0.5  # too soon for a rate: still none
    assert sampler.sample(cpu_seconds=10.1, counters=counters(messages_sent=50)) is None

    clock.now += 1.5  # two seconds after the first sample
    rates = sampler.sample(cpu_seconds=11.0, counters=counters(messages_sent=400, bytes_sent=12_000, ingest_points=30))
    assert rates["messages_sent"] == 200.0
    assert rates["bytes_sent"] == 6000.0
    assert rates["ingest_points"] == 15.0
    assert rates["cpu_percent"] == pytest.approx(50.0)
    assert rates["interval_seconds"] == 2.0

    clock.now += 0.2  # within the next interval: the last full interval's rates stand
    assert sampler.sample(cpu_seconds=11.1, counters=counters(messages_sent=9_999)) == rates

    clock.now += 1.0  # 1.2 s after the previous full sample
    later = sampler.sample(cpu_seconds=11.6, counters=counters(messages_sent=520, bytes_sent=12_000, ingest_points=30))
    assert later["messages_sent"] == pytest.approx(100.0)
    assert later["bytes_sent"] == 0.0
    assert later["cpu_percent"] == pytest.approx(50.0)
