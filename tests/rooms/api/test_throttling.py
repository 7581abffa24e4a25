"""Throttling: the ``join`` scope (429 + Retry-After) and the room-password lockout (429 locked_out)."""

import types

import pytest
from rest_framework.throttling import SimpleRateThrottle

from rooms import lockout
from rooms.models import Spectator
from tests.api_errors import assert_api_error


@pytest.fixture
def join_rate(settings, monkeypatch):
    """Set the ``join`` scope's rate for this test."""

    def set_rate(rate: str) -> None:
        rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "join": rate}
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
        # DRF copies the rates into a class attribute when rest_framework.throttling is imported,
        # so a settings change alone would not reach the throttles.
        monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", rates)

    return set_rate


def assert_throttled(response) -> None:
    assert_api_error(response, 429, "throttled")
    assert 1 <= int(response["Retry-After"]) <= 60


# --- Join scope ---------------------------------------------------------------------------


def test_join_scope_throttles_an_anonymous_client(api_client, make_room, join, join_rate):
    join_rate("2/min")
    room = make_room()

    assert join(api_client(), room).status_code == 200
    assert join(api_client(), room).status_code == 200
    assert_throttled(join(api_client(), room))
    assert Spectator.objects.count() == 2


def test_join_scope_counts_across_rooms(api_client, make_room, join, join_rate):
    join_rate("2/min")
    first, second = make_room(), make_room()

    assert join(api_client(), first).status_code == 200
    assert join(api_client(), second).status_code == 200
    assert_throttled(join(api_client(), make_room()))


def test_join_scope_counts_refused_joins_too(api_client, make_room, join, join_rate):
    join_rate("2/min")
    room = make_room(access_level="password", password="open sesame")

    assert join(api_client(), room, password="nope").status_code == 403
    assert join(api_client(), room, password="nope").status_code == 403
    assert_throttled(join(api_client(), room, password="open sesame"))


def test_join_scope_is_per_client(api_client, make_room, make_user, join, join_rate):
    join_rate("1/min")
    room = make_room()
    user = make_user()

    assert join(api_client(), room).status_code == 200
    assert_throttled(join(api_client(), room))
    other_address = api_client().post(f"/api/v1/rooms/{room.code}/join/", {}, format="json", REMOTE_ADDR="10.9.8.7")
    assert other_address.status_code == 200, other_address.json()
    assert join(api_client(user), room).status_code == 200
    assert_throttled(join(api_client(user), room))
    # A signed-in user is counted by account, whatever the address.
    from_elsewhere = api_client(user).post(
        f"/api/v1/rooms/{room.code}/join/", {}, format="json", REMOTE_ADDR="10.1.1.1"
    )
    assert_throttled(from_elsewhere)


def test_join_scope_leaves_other_endpoints_alone(api_client, make_room, join, join_rate):
    join_rate("1/min")
    room = make_room()
    client = api_client()
    assert join(client, room).status_code == 200
    assert_throttled(join(client, room))

    assert client.get(f"/api/v1/rooms/{room.code}/").status_code == 200
    assert client.get("/api/v1/rooms/public/").status_code == 200
    assert client.get(f"/api/v1/rooms/{room.code}/spectators/").status_code == 200
    assert client.post(f"/api/v1/rooms/{room.code}/leave/", {}, format="json").status_code == 204


def test_join_scope_is_configured(settings):
    assert "join" in settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    assert SimpleRateThrottle.THROTTLE_RATES["join"] == settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["join"]


# --- Password lockout -----------------------------------------------------------------------


@pytest.fixture
def clock(monkeypatch):
    """Stand-in for ``time`` inside ``rooms.lockout``: ``clock.now`` is what ``time.time()`` returns."""
    fake = types.SimpleNamespace(now=1_000_000.0)
    fake.time = lambda: fake.now
    monkeypatch.setattr(lockout, "time", fake)
    return fake


@pytest.fixture
def lockout_settings(settings):
    settings.SPECTATOR_PASSWORD_MAX_ATTEMPTS = 3
    settings.SPECTATOR_PASSWORD_LOCKOUT_SECONDS = 600
    return settings


@pytest.fixture
def room(make_room):
    return make_room(access_level="password", password="open sesame")


def fail_until_locked(api_client, room, join, **extra):
    for _ in range(3):
        assert_api_error(join(api_client(**extra), room, password="wrong"), 403, "wrong_password")


def test_lockout_after_too_many_wrong_passwords(api_client, room, join, lockout_settings, clock):
    fail_until_locked(api_client, room, join)
    clock.now += 100

    response = join(api_client(), room, password="open sesame")

    body = assert_api_error(response, 429, "locked_out")
    assert response["Retry-After"] == "500"
    assert "500" in body["detail"]
    assert_api_error(join(api_client(), room, password="wrong"), 429, "locked_out")
    assert not Spectator.objects.exists()


def test_lockout_ends_after_the_window(api_client, room, join, lockout_settings, clock):
    fail_until_locked(api_client, room, join)
    clock.now += 599
    assert_api_error(join(api_client(), room, password="open sesame"), 429, "locked_out")

    clock.now += 2

    assert join(api_client(), room, password="open sesame").status_code == 200


def test_lockout_ends_when_its_cache_entry_goes(api_client, room, join, lockout_settings):
    fail_until_locked(api_client, room, join)
    assert_api_error(join(api_client(), room, password="open sesame"), 429, "locked_out")

    lockout.lockout_clear(room_id=room.pk, client="ip:127.0.0.1")

    assert join(api_client(), room, password="open sesame").status_code == 200


def test_lockout_is_per_room(api_client, room, make_room, join, lockout_settings):
    other = make_room(access_level="password", password="open sesame")
    fail_until_locked(api_client, room, join)

    assert join(api_client(), other, password="open sesame").status_code == 200


def test_lockout_is_per_client(api_client, room, make_user, join, lockout_settings):
    fail_until_locked(api_client, room, join)
    user = make_user()

    assert join(api_client(user), room, password="open sesame").status_code == 200
    elsewhere = api_client().post(
        f"/api/v1/rooms/{room.code}/join/", {"password": "open sesame"}, format="json", REMOTE_ADDR="10.9.8.7"
    )
    assert elsewhere.status_code == 200, elsewhere.json()


def test_signed_in_user_is_locked_out_wherever_they_are(api_client, room, stranger, join, lockout_settings):
    fail_until_locked(api_client, room, join, user=stranger)

    response = api_client(stranger).post(
        f"/api/v1/rooms/{room.code}/join/", {"password": "open sesame"}, format="json", REMOTE_ADDR="10.9.8.7"
    )

    assert_api_error(response, 429, "locked_out")


def test_right_password_resets_the_count(api_client, room, join, lockout_settings):
    for _ in range(2):
        assert join(api_client(), room, password="wrong").status_code == 403
    assert join(api_client(), room, password="open sesame").status_code == 200
    Spectator.objects.all().delete()

    for _ in range(2):
        assert_api_error(join(api_client(), room, password="wrong"), 403, "wrong_password")
    assert join(api_client(), room, password="open sesame").status_code == 200


def test_failures_below_the_limit_do_not_lock(api_client, room, join, lockout_settings):
    for _ in range(2):
        join(api_client(), room, password="wrong")

    assert join(api_client(), room, password="open sesame").status_code == 200


def test_locked_out_visitor_without_a_password_is_asked_for_one(api_client, room, join, lockout_settings):
    fail_until_locked(api_client, room, join)

    assert_api_error(join(api_client(), room), 403, "password_required")


def test_lockout_does_not_touch_those_already_admitted(api_client, room, owner, join, lockout_settings):
    seated = api_client()
    assert join(seated, room, password="open sesame").status_code == 200
    fail_until_locked(api_client, room, join)
    assert_api_error(join(api_client(), room, password="open sesame"), 429, "locked_out")

    assert join(seated, room).status_code == 200
    assert join(api_client(owner), room).status_code == 200
