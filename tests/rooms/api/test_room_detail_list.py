"""GET /api/v1/rooms/<ref>/, /api/v1/rooms/ (mine) and /api/v1/rooms/public/."""

from datetime import timedelta

import pytest
from django.utils import timezone

from metrics.services import training_session_create
from rooms.models import Room
from rooms.services import room_close
from tests.api_errors import assert_api_error


def detail(client, ref):
    return client.get(f"/api/v1/rooms/{ref}/")


def expire(room):
    Room.objects.filter(pk=room.pk).update(expires_at=timezone.now() - timedelta(seconds=1))


# --- Detail -------------------------------------------------------------------------------


def test_public_room_detail_to_anonymous(api_client, make_room):
    room = make_room(name="Cart", access_level="public")

    response = detail(api_client(), room.code)

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["room_id"] == str(room.pk)
    assert body["room_code"] == room.code
    assert body["name"] == "Cart"
    assert body["creator_id"] == "owner"
    assert body["training_session"]["id"] == "cartpole-dqn"
    assert body["training_session"]["algorithm"] == "DQN"
    assert body["can_manage"] is False
    assert body["pending_requests"] is None
    assert "allowed_users" not in body["access_control"]
    assert "blocked_users" not in body["access_control"]
    assert "room_password" not in body


@pytest.mark.parametrize("ref", ["code-lower", "code-padded", "uuid"])
def test_room_found_by_code_any_case_or_by_id(api_client, make_room, ref):
    room = make_room()
    refs = {"code-lower": room.code.lower(), "code-padded": f" {room.code} ", "uuid": str(room.pk)}

    response = detail(api_client(), refs[ref])

    assert response.status_code == 200, response.json()
    assert response.json()["room_id"] == str(room.pk)


@pytest.mark.parametrize("ref", ["ZZZZZZ", "00000000-0000-0000-0000-000000000000", "nonsense"])
def test_unknown_room(api_client, db, ref):
    assert_api_error(detail(api_client(), ref), 404, "room_not_found")


def test_private_room_looks_missing_to_strangers(api_client, make_room, stranger):
    room = make_room(access_level="private")

    anonymous = assert_api_error(detail(api_client(), room.code), 404, "room_not_found")
    signed_in = assert_api_error(detail(api_client(stranger), room.code), 404, "room_not_found")
    unknown = assert_api_error(detail(api_client(), "ZZZZZZ"), 404, "room_not_found")
    assert anonymous == signed_in == unknown
    assert_api_error(detail(api_client(stranger), str(room.pk)), 404, "room_not_found")


def test_private_room_visible_to_allowed_users_invitees_managers_and_staff(api_client, make_room, make_user, staff):
    from rooms.services import invitation_create

    allowed, invited = make_user("allowed"), make_user("invited")
    room = make_room(access_level="private", allowed_users=["allowed"])
    invitation_create(room=room, username="invited", actor=room.creator)

    for user in (allowed, invited):
        response = detail(api_client(user), room.code)
        assert response.status_code == 200, response.json()
        assert response.json()["can_manage"] is False
    for user in (room.creator, staff):
        response = detail(api_client(user), room.code)
        assert response.status_code == 200, response.json()
        assert response.json()["can_manage"] is True
        assert response.json()["access_control"]["allowed_users"] == ["allowed"]


def test_invite_only_room_is_visible_but_not_listed(api_client, make_room):
    room = make_room(access_level="invite_only")

    assert detail(api_client(), room.code).status_code == 200
    assert api_client().get("/api/v1/rooms/public/").json()["count"] == 0


def test_manager_sees_pending_requests_and_bans(api_client, make_room, make_user, join):
    make_user("mallory")
    room = make_room(require_approval=True, blocked_users=["mallory"])
    join(api_client(), room)

    body = detail(api_client(room.creator), room.code).json()

    assert body["pending_requests"] == 1
    assert body["access_control"]["blocked_users"] == ["mallory"]


def test_ended_room_detail_reports_status(api_client, make_room, owner):
    closed, expired = make_room(), make_room()
    room_close(room=closed, actor=owner)
    expire(expired)

    assert detail(api_client(), closed.code).json()["room_status"] == "closed"
    assert detail(api_client(), expired.code).json()["room_status"] == "expired"


def test_code_names_its_live_room_before_an_older_closed_one(api_client, make_room, owner):
    old = make_room(custom_code="SAME22")
    room_close(room=old, actor=owner)
    new = make_room(custom_code="SAME22")

    assert detail(api_client(), "SAME22").json()["room_id"] == str(new.pk)
    assert detail(api_client(), str(old.pk)).json()["room_status"] == "closed"


# --- Mine -----------------------------------------------------------------------------------


def test_my_rooms_lists_rooms_i_manage(api_client, make_room, owner, stranger):
    other_session, _ = training_session_create(owner=stranger, id="strangers-run")
    mine_public, mine_private = make_room(), make_room(access_level="private")
    make_room(creator=stranger, training_session=other_session)
    closed = make_room()
    room_close(room=closed, actor=owner)
    expired = make_room()
    expire(expired)

    response = api_client(owner).get("/api/v1/rooms/")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["count"] == 2
    assert {room["room_id"] for room in body["results"]} == {str(mine_public.pk), str(mine_private.pk)}
    assert all(room["can_manage"] for room in body["results"])

    ended = api_client(owner).get("/api/v1/rooms/?include_ended=true").json()
    assert ended["count"] == 4
    assert {room["room_status"] for room in ended["results"]} == {"active", "closed", "expired"}


def test_my_rooms_is_paginated(api_client, make_room, owner):
    for _ in range(3):
        make_room()

    body = api_client(owner).get("/api/v1/rooms/?limit=2").json()

    assert body["count"] == 3
    assert len(body["results"]) == 2
    assert body["next"]


def test_my_rooms_needs_sign_in(api_client, db):
    assert_api_error(api_client().get("/api/v1/rooms/"), 401, "not_authenticated")


def test_my_rooms_empty_for_someone_without_rooms(api_client, make_room, stranger):
    make_room()

    assert api_client(stranger).get("/api/v1/rooms/").json()["count"] == 0


# --- Public -----------------------------------------------------------------------------------


def test_public_list_shows_only_live_public_and_password_rooms(api_client, make_room, owner):
    public = make_room(access_level="public")
    password = make_room(access_level="password")
    make_room(access_level="private")
    make_room(access_level="invite_only")
    room_close(room=make_room(), actor=owner)
    expire(make_room())

    response = api_client().get("/api/v1/rooms/public/")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["count"] == 2
    assert {room["room_id"] for room in body["results"]} == {str(public.pk), str(password.pk)}
    by_id = {room["room_id"]: room for room in body["results"]}
    assert by_id[str(password.pk)]["access_control"]["password_protected"] is True
    assert all("room_password" not in room for room in body["results"])


def test_public_list_includes_live_spectator_counts(api_client, make_room, make_user, join):
    busy, quiet = make_room(), make_room()
    viewers = [api_client(make_user()) for _ in range(3)]
    for client in viewers:
        assert join(client, busy).status_code == 200
    viewers[0].post(f"/api/v1/rooms/{busy.code}/leave/", {}, format="json")
    anonymous = api_client()
    assert join(anonymous, busy).status_code == 200

    rooms = {room["room_id"]: room for room in api_client().get("/api/v1/rooms/public/").json()["results"]}

    assert rooms[str(busy.pk)]["current_spectators"] == 3
    assert rooms[str(quiet.pk)]["current_spectators"] == 0
    assert detail(api_client(), busy.code).json()["current_spectators"] == 3


def test_public_list_newest_first_and_paginated(api_client, make_room):
    first, second = make_room(), make_room()

    body = api_client().get("/api/v1/rooms/public/?limit=1").json()

    assert body["count"] == 2
    assert [room["room_id"] for room in body["results"]] == [str(second.pk)]
    assert api_client().get("/api/v1/rooms/public/?limit=1&offset=1").json()["results"][0]["room_id"] == str(first.pk)
