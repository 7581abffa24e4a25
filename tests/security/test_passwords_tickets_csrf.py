"""Room-password brute force, join tickets (expiry, other rooms, other spectators) and CSRF on
every form and every session-authenticated API write."""

from __future__ import annotations

import json

import pytest
from channels.db import database_sync_to_async
from django.core import signing
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from rooms import lockout
from rooms.access import Visitor
from rooms.services import room_join
from rooms.tickets import InvalidTicket, ticket_issue, ticket_read
from tests.security.conftest import ROOM_PASSWORD
from tests.security.test_authorization_matrix import MATRIX
from tests.support.live import close_thread_connections, expect_refused, receive_json, room_path, ws_open


class FakeClock:
    """Stands in for the ``time`` module where a module reads the time."""

    def __init__(self, now: float = 1_800_000_000.0):
        self.now = now

    def time(self) -> float:
        return self.now


# --- Password brute force ------------------------------------------------------------------


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(lockout, "time", fake)
    return fake


@pytest.fixture
def password_room(make_room):
    return make_room(access_level="password", password=ROOM_PASSWORD)


def join_path(room) -> str:
    return f"/api/v1/rooms/{room.code}/join/"


@pytest.mark.django_db
def test_api_lockout_after_the_limit_until_the_window_ends(api_client, make_user, password_room, settings, clock):
    attacker, bystander = api_client(make_user("attacker")), api_client(make_user("bystander"))
    for _attempt in range(settings.SPECTATOR_PASSWORD_MAX_ATTEMPTS):
        response = attacker.post(join_path(password_room), {"password": "guess"}, format="json")
        assert (response.status_code, response.json()["error"]) == (403, "wrong_password")

    # Locked out now: even the right password is refused, with a Retry-After.
    locked = attacker.post(join_path(password_room), {"password": ROOM_PASSWORD}, format="json")
    assert (locked.status_code, locked.json()["error"]) == (429, "locked_out")
    assert 0 < int(locked["Retry-After"]) <= settings.SPECTATOR_PASSWORD_LOCKOUT_SECONDS
    # Another client is not locked out by the attacker.
    assert bystander.post(join_path(password_room), {"password": ROOM_PASSWORD}, format="json").status_code == 200

    clock.now += settings.SPECTATOR_PASSWORD_LOCKOUT_SECONDS - 1
    assert attacker.post(join_path(password_room), {"password": ROOM_PASSWORD}, format="json").status_code == 429
    clock.now += 2
    assert attacker.post(join_path(password_room), {"password": ROOM_PASSWORD}, format="json").status_code == 200


@pytest.mark.django_db
def test_room_page_form_lockout_survives_a_fresh_browser_session(password_room, settings, clock):
    """The room page's password form posts to the join API with the session and its CSRF token;
    an anonymous attacker who drops cookies is still locked out (counted by address)."""

    def browser() -> tuple[Client, str]:
        client = Client(enforce_csrf_checks=True)
        page = client.get(reverse("room", kwargs={"code": password_room.code}))
        assert page.status_code == 200 and b'id="password-form"' in page.content
        return client, client.cookies["csrftoken"].value

    def submit(client, token, password):
        return client.post(
            join_path(password_room),
            json.dumps({"password": password}),
            content_type="application/json",
            HTTP_X_CSRFTOKEN=token,
        )

    client, token = browser()
    for _attempt in range(settings.SPECTATOR_PASSWORD_MAX_ATTEMPTS):
        assert submit(client, token, "guess").status_code == 403
    assert submit(client, token, ROOM_PASSWORD).status_code == 429
    fresh, fresh_token = browser()
    refused = submit(fresh, fresh_token, ROOM_PASSWORD)
    assert (refused.status_code, refused.json()["error"]) == (429, "locked_out")


# --- Tickets --------------------------------------------------------------------------------


@pytest.fixture
def signing_clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(signing, "time", fake)
    return fake


@pytest.mark.django_db
def test_ticket_expires_after_its_max_age(make_room, make_user, settings, signing_clock):
    settings.SPECTATOR_TICKET_MAX_AGE = 120
    room = make_room()
    spectator = room_join(room=room, visitor=Visitor(user=make_user("ann"))).spectator
    ticket = ticket_issue(room_id=room.pk, spectator_id=spectator.pk)

    signing_clock.now += 119
    assert ticket_read(ticket, room_id=room.pk).spectator_id == spectator.pk
    signing_clock.now += 2
    with pytest.raises(InvalidTicket):
        ticket_read(ticket, room_id=room.pk)


@pytest.mark.django_db(transaction=True)
class TestTicketsOnTheSocket:
    @pytest.fixture(autouse=True)
    async def _closes_thread_connections(self):
        yield
        await close_thread_connections()

    async def seat(self, room, make_user, name):
        user = await database_sync_to_async(make_user)(name)
        return (await database_sync_to_async(room_join)(room=room, visitor=Visitor(user=user))).spectator

    async def test_expired_ticket_closes_4401(self, make_room, make_user, settings, signing_clock):
        settings.SPECTATOR_TICKET_MAX_AGE = 120
        room = await database_sync_to_async(make_room)()
        ann = await self.seat(room, make_user, "ann")
        ticket = ticket_issue(room_id=room.pk, spectator_id=ann.pk)
        signing_clock.now += 121
        await expect_refused(await ws_open(room_path(room.code, ticket)), "ticket_required", 4401)
        signing_clock.now -= 2
        communicator = await ws_open(room_path(room.code, ticket))
        assert (await receive_json(communicator))["type"] == "graph_config"
        await communicator.disconnect()

    async def test_a_ticket_for_room_a_is_refused_on_room_b(self, make_room, make_user):
        room_a, room_b = await database_sync_to_async(make_room)(), await database_sync_to_async(make_room)()
        ann = await self.seat(room_a, make_user, "ann")
        ticket = ticket_issue(room_id=room_a.pk, spectator_id=ann.pk)
        await expect_refused(await ws_open(room_path(room_b.code, ticket)), "ticket_required", 4401)

    async def test_a_seat_of_room_a_is_not_a_seat_in_room_b(self, make_room, make_user):
        # Even a genuine ticket for room B cannot seat room A's spectator there.
        room_a, room_b = await database_sync_to_async(make_room)(), await database_sync_to_async(make_room)()
        ann = await self.seat(room_a, make_user, "ann")
        ticket = ticket_issue(room_id=room_b.pk, spectator_id=ann.pk)
        await expect_refused(await ws_open(room_path(room_b.code, ticket)), "room_not_found", 4404)

    async def test_a_ticket_cannot_be_rewritten_for_another_spectator(self, make_room, make_user):
        room = await database_sync_to_async(make_room)()
        ann = await self.seat(room, make_user, "ann")
        bob = await self.seat(room, make_user, "bob")
        payload, timestamp, signature = ticket_issue(room_id=room.pk, spectator_id=ann.pk).rsplit(":", 2)
        bobs_payload = signing.dumps({"r": str(room.pk), "s": bob.pk}, compress=True, key="not-our-key").split(":")[0]
        assert bobs_payload != payload
        for attempt in (f"{bobs_payload}:{timestamp}:{signature}", f"{payload}:{timestamp}:{signature[::-1]}"):
            await expect_refused(await ws_open(room_path(room.code, attempt)), "ticket_required", 4401)


# --- CSRF -----------------------------------------------------------------------------------


def html_routes() -> list[str]:
    """Every URL pattern outside the API, with path arguments filled in."""
    paths = []

    def walk(patterns, prefix: str) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern) and not route.startswith("api/"):
                paths.append(route)

    walk(get_resolver().url_patterns, "")
    return paths


def filled(route: str, room_code: str) -> str:
    import re

    route = route.lstrip("^").rstrip("$").replace("\\Z", "")
    route = re.sub(r"<(?:str:)?code>", room_code, route)
    route = re.sub(r"<(?:path:)?object_id>", "1", route)
    route = re.sub(r"<[^>]+>", "1", route)
    route = re.sub(r"\(\?P<[^>]+>[^)]*\)", "1", route)
    return "/" + route


@pytest.mark.django_db
def test_no_page_accepts_a_post_without_the_csrf_token(make_user, make_room, training_session):
    room = make_room(name="Room")
    admin = make_user("root", staff=True)
    admin.is_superuser = True
    admin.save()
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin)
    checked = []
    for route in html_routes():
        path = filled(route, room.code)
        response = client.post(path, {"name": "x", "training_session": training_session.pk})
        assert response.status_code in (403, 404, 405), (path, response.status_code)
        if response.status_code == 403:
            assert b"CSRF" in response.content, path
            checked.append(path)
    # The forms we serve: creating a room, signing in and out, and the admin's.
    for expected in ("/my/rooms/new/", "/accounts/login/", "/accounts/logout/", "/admin/rooms/room/add/"):
        assert expected in checked, (expected, checked)


@pytest.mark.django_db
def test_the_room_form_works_with_its_token(owner, training_session):
    # The control for the test above: the 403 is the missing token, not the form.
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    page = client.get("/my/rooms/new/")
    token = client.cookies["csrftoken"].value
    assert page.status_code == 200
    data = {
        "csrfmiddlewaretoken": token,
        "training_session": training_session.pk,
        "name": "Evening run",
        "access_level": "public",
        "max_spectators": 5,
        "auto_approve_timeout": 0,
        "duration_hours": 2,
    }
    response = client.post("/my/rooms/new/", data)
    assert response.status_code == 302, response.content[:500]


API_WRITES = sorted(key for key in MATRIX if key[1] != "GET")


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "method"), API_WRITES, ids=[f"{n}-{m}" for n, m in API_WRITES])
def test_session_authenticated_api_writes_need_the_csrf_token(cast, name, method):
    row = MATRIX[(name, method)]
    client = Client(enforce_csrf_checks=True)
    client.force_login(cast.users["owner"])
    path = reverse(name, kwargs=row.kwargs(cast))
    body = row.body(cast) if row.body else {}
    content_type = "application/json" if row.content_type == "json" else row.content_type
    data = json.dumps(body) if row.content_type == "json" else body

    response = client.generic(method, path, data, content_type=content_type)

    assert response.status_code == 403, (path, response.status_code, response.content[:300])
    assert "CSRF" in response.json()["detail"]
