"""Spectators (list, kick) and bans (create by username or spectator, list, lift)."""

import pytest

from rooms.models import Ban, Spectator
from tests.api_errors import assert_api_error


def url(room, suffix):
    return f"/api/v1/rooms/{room.code}/{suffix}"


def kick(client, room, spectator_id):
    return client.post(url(room, f"spectators/{spectator_id}/kick/"))


def ban(client, room, **data):
    return client.post(url(room, "bans/"), data, format="json")


@pytest.fixture
def room(make_room):
    return make_room()


@pytest.fixture
def watcher(make_user):
    return make_user("watcher")


@pytest.fixture
def watcher_seat(api_client, room, watcher, join):
    response = join(api_client(watcher), room)
    assert response.status_code == 200, response.json()
    return response.json()["spectator_id"]


@pytest.fixture
def guest(api_client, room, join):
    """An anonymous spectator: their join response."""
    response = join(api_client(), room, display_name="Guest Ann")
    assert response.status_code == 200, response.json()
    return response.json()


# --- Spectator list ---------------------------------------------------------------------------


def test_owner_lists_present_spectators(api_client, owner, room, watcher_seat, guest, stranger, join):
    client = api_client(stranger)
    join(client, room)
    client.post(url(room, "leave/"), {}, format="json")

    response = api_client(owner).get(url(room, "spectators/"))

    assert response.status_code == 200, response.json()
    body = response.json()
    assert [item["display_name"] for item in body] == ["watcher", "Guest Ann"]
    assert body[0] == {
        "spectator_id": watcher_seat,
        "display_name": "watcher",
        "username": "watcher",
        "anonymous": False,
        "joined_at": body[0]["joined_at"],
        "last_seen_at": body[0]["last_seen_at"],
    }
    assert body[1]["anonymous"] is True
    assert body[1]["username"] is None


def test_present_spectators_see_the_list(api_client, room, watcher, watcher_seat, guest):
    assert api_client(watcher).get(url(room, "spectators/")).status_code == 200
    by_token = api_client().get(url(room, f"spectators/?visitor_token={guest['visitor_token']}"))
    assert by_token.status_code == 200, by_token.json()
    assert len(by_token.json()) == 2


def test_spectator_list_refused_to_those_not_present(api_client, room, watcher, watcher_seat, stranger):
    assert_api_error(api_client(stranger).get(url(room, "spectators/")), 403, "permission_denied")
    assert_api_error(api_client().get(url(room, "spectators/")), 403, "permission_denied")
    assert_api_error(api_client().get(url(room, "spectators/?visitor_token=guess")), 403, "permission_denied")
    api_client(watcher).post(url(room, "leave/"), {}, format="json")
    assert_api_error(api_client(watcher).get(url(room, "spectators/")), 403, "permission_denied")


def test_spectator_list_of_private_room_looks_missing(api_client, make_room, stranger):
    room = make_room(access_level="private")

    assert_api_error(api_client(stranger).get(url(room, "spectators/")), 404, "room_not_found")
    assert_api_error(api_client().get(url(room, "spectators/")), 404, "room_not_found")


def test_spectator_list_unknown_room(api_client, db):
    assert_api_error(api_client().get("/api/v1/rooms/ZZZZZZ/spectators/"), 404, "room_not_found")


# --- Kick ---------------------------------------------------------------------------------


def test_kick_removes_the_spectator_who_must_rejoin(api_client, owner, room, watcher, watcher_seat, join):
    response = kick(api_client(owner), room, watcher_seat)

    assert response.status_code == 200, response.json()
    assert response.json()["spectator_id"] == watcher_seat
    spectator = Spectator.objects.get(pk=watcher_seat)
    assert spectator.left_reason == "kicked"
    assert_api_error(api_client(watcher).get(url(room, "spectators/")), 403, "permission_denied")
    rejoined = join(api_client(watcher), room)
    assert rejoined.status_code == 200, rejoined.json()
    assert rejoined.json()["spectator_id"] != watcher_seat


def test_kick_anonymous_spectator(api_client, owner, room, guest):
    assert kick(api_client(owner), room, guest["spectator_id"]).status_code == 200
    assert Spectator.objects.get(pk=guest["spectator_id"]).left_reason == "kicked"


def test_kick_a_spectator_who_left(api_client, owner, room, watcher, watcher_seat):
    api_client(watcher).post(url(room, "leave/"), {}, format="json")

    assert_api_error(kick(api_client(owner), room, watcher_seat), 400, "validation_error", "spectator_id")


def test_kick_twice(api_client, owner, room, watcher_seat):
    kick(api_client(owner), room, watcher_seat)

    assert_api_error(kick(api_client(owner), room, watcher_seat), 400, "validation_error", "spectator_id")


def test_kick_unknown_spectator(api_client, owner, room, watcher_seat, make_room):
    assert_api_error(kick(api_client(owner), room, watcher_seat + 1000), 404, "not_found")
    assert_api_error(kick(api_client(owner), make_room(), watcher_seat), 404, "not_found")
    assert Spectator.objects.get(pk=watcher_seat).is_present


def test_kick_a_manager_is_refused(api_client, owner, staff, room, join):
    owner_seat = join(api_client(owner), room).json()["spectator_id"]

    assert_api_error(kick(api_client(staff), room, owner_seat), 400, "validation_error", "spectator")
    assert Spectator.objects.get(pk=owner_seat).is_present


def test_kick_by_non_manager(api_client, room, watcher, watcher_seat, stranger):
    assert_api_error(kick(api_client(stranger), room, watcher_seat), 403, "permission_denied")
    assert_api_error(kick(api_client(watcher), room, watcher_seat), 403, "permission_denied")
    assert_api_error(kick(api_client(), room, watcher_seat), 401, "not_authenticated")
    assert Spectator.objects.get(pk=watcher_seat).is_present


def test_kick_in_private_room_by_stranger(api_client, make_room, stranger, owner, join):
    room = make_room(access_level="private")
    seat = join(api_client(owner), room).json()["spectator_id"]

    assert_api_error(kick(api_client(stranger), room, seat), 404, "room_not_found")


# --- Bans ---------------------------------------------------------------------------------


def test_ban_by_username_removes_and_refuses_the_user(api_client, owner, room, watcher, watcher_seat, join):
    response = ban(api_client(owner), room, username="watcher", reason="spam")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["username"] == "watcher"
    assert body["display_name"] == "watcher"
    assert body["reason"] == "spam"
    assert body["banned_by"] == "owner"
    assert body["lifted_at"] is None
    assert Spectator.objects.get(pk=watcher_seat).left_reason == "banned"
    assert_api_error(join(api_client(watcher), room), 403, "banned")


def test_ban_a_user_who_is_not_present(api_client, owner, room, stranger, join):
    assert ban(api_client(owner), room, username="stranger").status_code == 201

    assert_api_error(join(api_client(stranger), room), 403, "banned")


def test_ban_anonymous_spectator_by_spectator_id(api_client, owner, room, guest, join):
    response = ban(api_client(owner), room, spectator_id=guest["spectator_id"])

    assert response.status_code == 201, response.json()
    assert response.json()["username"] is None
    assert response.json()["display_name"] == "Guest Ann"
    assert not Spectator.objects.get(pk=guest["spectator_id"]).is_present
    assert_api_error(join(api_client(), room, visitor_token=guest["visitor_token"]), 403, "banned")
    assert join(api_client(), room).status_code == 200


def test_ban_signed_in_spectator_by_spectator_id(api_client, owner, room, watcher, watcher_seat, join):
    response = ban(api_client(owner), room, spectator_id=watcher_seat)

    assert response.status_code == 201, response.json()
    assert response.json()["username"] == "watcher"
    assert_api_error(join(api_client(watcher), room), 403, "banned")


def test_ban_denies_a_pending_request(api_client, owner, make_room, stranger, join):
    room = make_room(require_approval=True)
    request_id = join(api_client(stranger), room).json()["request_id"]

    ban(api_client(owner), room, username="stranger")

    pending = api_client(owner).get(url(room, "join-requests/?status=denied")).json()
    assert [item["request_id"] for item in pending] == [request_id]


def test_banning_twice_keeps_one_ban(api_client, owner, room, watcher):
    first = ban(api_client(owner), room, username="watcher").json()["ban_id"]

    second = ban(api_client(owner), room, username="watcher")

    assert second.status_code == 201
    assert second.json()["ban_id"] == first
    assert Ban.objects.filter(room=room).count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "username"),
        ({"username": "watcher", "spectator_id": 1}, "username"),
        ({"username": ""}, "username"),
        ({"username": "nobody"}, "username"),
        ({"spectator_id": 0}, "spectator_id"),
        ({"spectator_id": "one"}, "spectator_id"),
        ({"spectator_id": 99999}, "spectator_id"),
        ({"username": "watcher", "reason": "r" * 501}, "reason"),
    ],
)
def test_ban_needs_exactly_one_known_target(api_client, owner, room, watcher, body, field):
    assert_api_error(ban(api_client(owner), room, **body), 400, "validation_error", field)
    assert not Ban.objects.exists()


def test_ban_a_spectator_of_another_room(api_client, owner, make_room, guest):
    other = make_room()

    assert_api_error(
        ban(api_client(owner), other, spectator_id=guest["spectator_id"]), 400, "validation_error", "spectator_id"
    )


def test_managers_cannot_be_banned(api_client, owner, staff, room, join):
    owner_seat = join(api_client(owner), room).json()["spectator_id"]

    assert_api_error(ban(api_client(staff), room, username="owner"), 400, "validation_error", "username")
    assert_api_error(ban(api_client(owner), room, spectator_id=owner_seat), 400, "validation_error", "username")
    assert_api_error(ban(api_client(owner), room, username="moderator"), 400, "validation_error", "username")
    assert not Ban.objects.exists()


def test_list_bans(api_client, owner, room, watcher, stranger):
    client = api_client(owner)
    ban(client, room, username="watcher")
    ban(client, room, username="stranger")

    response = client.get(url(room, "bans/"))

    assert response.status_code == 200, response.json()
    assert sorted(item["username"] for item in response.json()) == ["stranger", "watcher"]


def test_lift_ban(api_client, owner, room, watcher, join):
    client = api_client(owner)
    ban_id = ban(client, room, username="watcher").json()["ban_id"]

    response = client.delete(url(room, f"bans/{ban_id}/"))

    assert response.status_code == 204
    assert Ban.objects.get(pk=ban_id).lifted_at is not None
    assert client.get(url(room, "bans/")).json() == []
    assert join(api_client(watcher), room).status_code == 200
    assert client.delete(url(room, f"bans/{ban_id}/")).status_code == 204


def test_lift_unknown_ban(api_client, owner, room, watcher, make_room):
    client = api_client(owner)
    ban_id = ban(client, room, username="watcher").json()["ban_id"]

    assert_api_error(client.delete(url(room, f"bans/{ban_id + 1000}/")), 404, "not_found")
    assert_api_error(client.delete(url(make_room(), f"bans/{ban_id}/")), 404, "not_found")
    assert Ban.objects.get(pk=ban_id).lifted_at is None


def test_bans_refused_to_non_managers(api_client, owner, room, watcher, stranger):
    ban_id = ban(api_client(owner), room, username="watcher").json()["ban_id"]

    for client, status, error in (
        (api_client(stranger), 403, "permission_denied"),
        (api_client(), 401, "not_authenticated"),
    ):
        assert_api_error(client.get(url(room, "bans/")), status, error)
        assert_api_error(ban(client, room, username="watcher"), status, error)
        assert_api_error(client.delete(url(room, f"bans/{ban_id}/")), status, error)
    assert Ban.objects.get(pk=ban_id).lifted_at is None


def test_bans_of_private_room_look_missing(api_client, make_room, stranger):
    room = make_room(access_level="private")

    assert_api_error(api_client(stranger).get(url(room, "bans/")), 404, "room_not_found")
    assert_api_error(ban(api_client(stranger), room, username="owner"), 404, "room_not_found")
