"""Script in user-chosen names (display names, room and session names, algorithms, metric keys)
is shown as text on every page that shows it, and round-trips through the pages' JSON."""

from __future__ import annotations

import html
import json
import re

import pytest
from django.test import Client

from metrics.services import training_session_create
from rooms.access import Visitor
from rooms.services import join_request_decide, room_create, room_join
from tests.support.live import point

pytestmark = pytest.mark.django_db

SCRIPT = "<script>alert(1)</script>"
ATTRIBUTE = '"><img src=x onerror=alert(1)>'
PAYLOAD = SCRIPT + ATTRIBUTE
RAW_MARKERS = ("<script>alert(1)", "<img src=x onerror", "onerror=alert(1)>")


@pytest.fixture
def hostile(make_user):
    """A room, its session and people whose names are all ``PAYLOAD``."""
    owner = make_user("evil-owner")
    owner.is_staff = owner.is_superuser = True
    owner.save()
    session, _created = training_session_create(owner=owner, id="xss-run", name=PAYLOAD, algorithm=PAYLOAD)
    room, _password = room_create(creator=owner, training_session=session, name=PAYLOAD, require_approval=True)
    room_join(room=room, visitor=Visitor(user=make_user("watcher")), display_name=PAYLOAD)
    # An approved spectator and a waiting one, both named PAYLOAD.
    asker = Visitor(user=make_user("asker"))
    waiting = room_join(room=room, visitor=asker, display_name=PAYLOAD)
    join_request_decide(join_request=waiting.join_request, approver=owner, approved=True)
    room_join(room=room, visitor=asker, display_name=PAYLOAD)
    room_join(room=room, visitor=Visitor(user=make_user("waiter")), display_name=PAYLOAD)
    client = Client()
    client.force_login(owner)
    return room, session, client


def assert_no_raw_markup(body: str, path: str) -> None:
    for marker in RAW_MARKERS:
        assert marker not in body, (path, marker)


def assert_shown_escaped(body: str, path: str) -> None:
    escaped_html = html.escape(SCRIPT) in body or SCRIPT.replace("<", "&lt;").replace(">", "&gt;") in body
    escaped_json = "\\u003Cscript\\u003Ealert(1)\\u003C/script\\u003E" in body
    assert escaped_html or escaped_json, f"{path} does not show the name at all"


def json_scripts(body: str) -> dict[str, object]:
    scripts = re.findall(r'<script id="([^"]+)" type="application/json">(.*?)</script>', body, re.S)
    return {name: json.loads(content) for name, content in scripts}


PAGES = [
    "/",
    "/r/{code}/",
    "/my/",
    "/my/rooms/{code}/",
    "/compare/?sessions={session}",
    "/admin/rooms/room/",
    "/admin/rooms/room/{room_id}/change/",
    "/admin/rooms/joinrequest/",
    "/admin/rooms/spectator/",
    "/admin/metrics/trainingsession/",
]


@pytest.mark.parametrize("page", PAGES)
def test_names_are_escaped_on_every_page(hostile, page):
    room, session, client = hostile
    path = page.format(code=room.code, room_id=room.pk, session=session.pk)

    response = client.get(path)

    assert response.status_code == 200, (path, response.status_code)
    body = response.content.decode()
    assert_no_raw_markup(body, path)
    assert_shown_escaped(body, path)


def test_room_page_json_carries_the_names_as_data(hostile):
    room, session, client = hostile
    data = json_scripts(client.get(f"/r/{room.code}/").content.decode())["room-data"]
    assert data["name"] == PAYLOAD
    assert data["training_session"]["name"] == PAYLOAD
    assert data["training_session"]["algorithm"] == PAYLOAD


def test_names_are_escaped_for_anonymous_visitors_too(hostile):
    room, _session, _client = hostile
    for path in ("/", f"/r/{room.code}/"):
        body = Client().get(path).content.decode()
        assert_no_raw_markup(body, path)
        assert_shown_escaped(body, path)


def test_api_returns_names_as_json_strings(hostile, api_client):
    room, session, _client = hostile
    response = api_client().get(f"/api/v1/rooms/{room.code}/")
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["name"] == PAYLOAD


@pytest.mark.parametrize("key", [SCRIPT, ATTRIBUTE, "a<b", "x\u2028y"])
def test_metric_keys_with_markup_are_refused_at_ingest(api_client, owner, make_token, training_session, key):
    client = api_client(token=make_token(owner))
    response = client.post(
        f"/api/v1/sessions/{training_session.pk}/ingest/",
        {"points": [point(1, extra={key: 1.0})]},
        format="json",
    )
    assert response.status_code == 400
    assert any(field.startswith("points.0.extra") for field in response.json()["fields"]), response.json()
    training_session.refresh_from_db()
    assert key not in training_session.extra_keys


def test_display_names_with_control_characters_are_refused(api_client, make_room):
    room = make_room()
    response = api_client().post(f"/api/v1/rooms/{room.code}/join/", {"display_name": "a\x00<b>"}, format="json")
    assert response.status_code == 400
    assert "display_name" in response.json()["fields"]
