"""Managing a room: close, regenerate the password, PATCH access control."""

from datetime import timedelta

import pytest
from django.utils import timezone

from rooms.models import JoinRequest, Room, Spectator
from rooms.passwords import room_password_matches as check_password
from rooms.services import room_close
from tests.api_errors import assert_api_error


def url(room, suffix):
    return f"/api/v1/rooms/{room.code}/{suffix}"


def patch_access(client, room, **data):
    return client.patch(url(room, "access/"), data, format="json")


# --- Close --------------------------------------------------------------------------------


def test_owner_closes_room(api_client, owner, make_room, make_user, join):
    room = make_room(require_approval=True)
    watcher = make_user("watcher")
    JoinRequest.objects.create(room=room, user=watcher, display_name="watcher")
    seat = Spectator.objects.create(room=room, user=make_user(), display_name="someone")

    response = api_client(owner).post(url(room, "close/"))

    assert response.status_code == 200, response.json()
    assert response.json()["room_status"] == "closed"
    assert response.json()["current_spectators"] == 0
    seat.refresh_from_db()
    assert seat.left_reason == "closed"
    assert JoinRequest.objects.get(room=room).status == "expired"
    assert_api_error(join(api_client(), room), 410, "room_closed")
    assert api_client().get("/api/v1/rooms/public/").json()["count"] == 0


def test_closing_twice_is_harmless(api_client, owner, make_room):
    room = make_room()
    api_client(owner).post(url(room, "close/"))

    response = api_client(owner).post(url(room, "close/"))

    assert response.status_code == 200, response.json()
    assert response.json()["room_status"] == "closed"


def test_staff_closes_any_room(api_client, staff, make_room):
    room = make_room(access_level="private")

    response = api_client(staff).post(url(room, "close/"), {"actor_id": "owner"}, format="json")

    assert response.status_code == 200, response.json()
    assert Room.objects.get(pk=room.pk).status == "closed"


def test_close_by_non_manager(api_client, make_room, stranger, make_user, join):
    room = make_room()
    watcher = make_user("watcher")
    join(api_client(watcher), room)

    assert_api_error(api_client(stranger).post(url(room, "close/")), 403, "permission_denied")
    assert_api_error(api_client(watcher).post(url(room, "close/")), 403, "permission_denied")
    assert_api_error(api_client().post(url(room, "close/")), 401, "not_authenticated")
    assert Room.objects.get(pk=room.pk).status == "active"


def test_close_private_room_by_stranger_looks_missing(api_client, make_room, stranger):
    room = make_room(access_level="private")

    assert_api_error(api_client(stranger).post(url(room, "close/")), 404, "room_not_found")
    assert Room.objects.get(pk=room.pk).status == "active"


def test_close_unknown_room(api_client, owner):
    assert_api_error(api_client(owner).post("/api/v1/rooms/ZZZZZZ/close/"), 404, "room_not_found")


def test_close_with_actor_id_naming_someone_else(api_client, owner, make_room, stranger):
    room = make_room()

    body = assert_api_error(
        api_client(owner).post(url(room, "close/"), {"actor_id": "stranger"}, format="json"), 403, "permission_denied"
    )
    assert "actor_id" in body["detail"]
    assert Room.objects.get(pk=room.pk).status == "active"
    assert api_client(owner).post(url(room, "close/"), {"actor_id": "owner"}, format="json").status_code == 200


# --- Password -----------------------------------------------------------------------------


def test_regenerate_password(api_client, owner, make_room, join):
    room = make_room(access_level="password")
    old = room.plain_password

    response = api_client(owner).post(url(room, "password/"))

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["room_code"] == room.code
    new = body["room_password"]
    assert new and new != old
    assert check_password(new, Room.objects.get(pk=room.pk).password_hash)
    assert_api_error(join(api_client(), room, password=old), 403, "wrong_password")
    assert join(api_client(), room, password=new).status_code == 200


def test_regenerate_password_of_a_room_without_one(api_client, owner, make_room):
    room = make_room(access_level="public")

    assert_api_error(api_client(owner).post(url(room, "password/")), 400, "validation_error", "access_level")


def test_regenerate_password_by_non_manager(api_client, make_room, stranger):
    room = make_room(access_level="password")
    private = make_room(access_level="private")

    assert_api_error(api_client(stranger).post(url(room, "password/")), 403, "permission_denied")
    assert_api_error(api_client().post(url(room, "password/")), 401, "not_authenticated")
    assert_api_error(api_client(stranger).post(url(private, "password/")), 404, "room_not_found")
    assert check_password(room.plain_password, Room.objects.get(pk=room.pk).password_hash)


# --- Access -------------------------------------------------------------------------------


def test_switch_to_password_returns_a_new_password(api_client, owner, make_room, join):
    room = make_room(access_level="public")

    response = patch_access(api_client(owner), room, access_level="password")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["access_control"]["access_level"] == "password"
    assert body["access_control"]["password_protected"] is True
    password = body["room_password"]
    assert password
    assert_api_error(join(api_client(), room), 403, "password_required")
    assert join(api_client(), room, password=password).status_code == 200
    assert "room_password" not in api_client().get(url(room, "")).json()


def test_switch_to_password_with_a_chosen_password(api_client, owner, make_room, join):
    room = make_room()

    response = patch_access(api_client(owner), room, access_level="password", password="open sesame")

    assert response.json()["room_password"] == "open sesame"
    assert join(api_client(), room, password="open sesame").status_code == 200


def test_change_password_of_a_password_room(api_client, owner, make_room, join):
    room = make_room(access_level="password")

    response = patch_access(api_client(owner), room, password="new secret")

    assert response.status_code == 200, response.json()
    assert response.json()["room_password"] == "new secret"
    assert_api_error(join(api_client(), room, password=room.plain_password), 403, "wrong_password")


def test_leaving_password_drops_it(api_client, owner, make_room, join):
    room = make_room(access_level="password")

    response = patch_access(api_client(owner), room, access_level="public")

    assert response.status_code == 200, response.json()
    assert response.json()["room_password"] is None
    assert Room.objects.get(pk=room.pk).password_hash == ""
    assert join(api_client(), room).status_code == 200


def test_other_changes_return_no_password(api_client, owner, make_room, make_user):
    make_user("alice")
    room = make_room(access_level="password")

    response = patch_access(
        api_client(owner),
        room,
        max_spectators=3,
        auto_approve_timeout=30,
        allowed_users=["alice"],
        room_duration_hours=1,
    )

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["room_password"] is None
    assert body["access_control"]["max_spectators"] == 3
    assert body["access_control"]["auto_approve_timeout"] == 30
    assert body["access_control"]["allowed_users"] == ["alice"]
    room.refresh_from_db()
    assert (room.expires_at - room.created_at) == timedelta(hours=1)
    assert check_password(room.plain_password, room.password_hash)


def test_turning_approval_off_admits_everyone_waiting(api_client, owner, make_room, join):
    room = make_room(require_approval=True)
    pending = join(api_client(), room).json()

    response = patch_access(api_client(owner), room, require_approval=False)

    assert response.status_code == 200, response.json()
    assert response.json()["access_control"]["require_approval"] is False
    assert JoinRequest.objects.get(pk=pending["request_id"]).status == "approved"
    assert join(api_client(), room, visitor_token=pending["visitor_token"]).status_code == 200


def test_lowering_the_seat_limit_refuses_new_joins(api_client, owner, make_room, make_user, join):
    room = make_room()
    join(api_client(make_user()), room)

    patch_access(api_client(owner), room, max_spectators=1)

    assert_api_error(join(api_client(), room), 409, "room_full")


def test_making_a_room_private_hides_it(api_client, owner, make_room, stranger):
    room = make_room()

    patch_access(api_client(owner), room, access_level="private")

    assert_api_error(api_client(stranger).get(url(room, "")), 404, "room_not_found")


def test_empty_patch(api_client, owner, make_room):
    room = make_room()

    assert_api_error(patch_access(api_client(owner), room), 400, "validation_error", "non_field_errors")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"access_level": "secret"}, "access_level"),
        ({"password": "abc"}, "password"),
        ({"max_spectators": 0}, "max_spectators"),
        ({"auto_approve_timeout": -5}, "auto_approve_timeout"),
        ({"require_approval": "sometimes"}, "require_approval"),
        ({"allowed_users": ["nobody"]}, "allowed_users"),
        ({"room_duration_hours": 0}, "room_duration_hours"),
        ({"room_duration_hours": 24 * 365}, "room_duration_hours"),
    ],
)
def test_bad_patch_names_the_field(api_client, owner, make_room, body, field):
    room = make_room(access_level="password")
    before = Room.objects.values().get(pk=room.pk)

    assert_api_error(patch_access(api_client(owner), room, **body), 400, "validation_error", field)
    assert Room.objects.values().get(pk=room.pk) == before


def test_password_for_a_room_without_passwords(api_client, owner, make_room):
    room = make_room(access_level="public")

    assert_api_error(patch_access(api_client(owner), room, password="open sesame"), 400, "validation_error", "password")
    assert Room.objects.get(pk=room.pk).password_hash == ""


@pytest.mark.parametrize("ending", ["closed", "expired"])
def test_patch_an_ended_room(api_client, owner, make_room, ending):
    room = make_room()
    if ending == "closed":
        room_close(room=room, actor=owner)
    else:
        Room.objects.filter(pk=room.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    assert_api_error(patch_access(api_client(owner), room, max_spectators=5), 400, "validation_error", "room")


def test_patch_by_non_manager(api_client, make_room, stranger):
    room = make_room()
    private = make_room(access_level="private")

    assert_api_error(patch_access(api_client(stranger), room, max_spectators=99), 403, "permission_denied")
    assert_api_error(patch_access(api_client(), room, max_spectators=99), 401, "not_authenticated")
    assert_api_error(patch_access(api_client(stranger), private, max_spectators=99), 404, "room_not_found")
    assert Room.objects.get(pk=room.pk).max_spectators == 10


def test_staff_patches_any_room(api_client, staff, make_room):
    room = make_room(access_level="private")

    response = patch_access(api_client(staff), room, max_spectators=2)

    assert response.status_code == 200, response.json()
    assert response.json()["access_control"]["max_spectators"] == 2


@pytest.mark.parametrize("method", ["get", "put", "post", "delete"])
def test_access_accepts_only_patch(api_client, owner, make_room, method):
    room = make_room()

    response = getattr(api_client(owner), method)(url(room, "access/"), {}, format="json")

    assert_api_error(response, 405, "method_not_allowed")
