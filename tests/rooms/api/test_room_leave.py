"""POST /api/v1/rooms/<ref>/leave/: frees the seat; leaving a room you are not in is not an error."""

from rooms.models import Spectator
from tests.api_errors import assert_api_error


def leave(client, room, **data):
    return client.post(f"/api/v1/rooms/{getattr(room, 'code', room)}/leave/", data, format="json")


def present(room) -> int:
    return Spectator.objects.filter(room=room, left_at__isnull=True).count()


def test_signed_in_spectator_leaves(api_client, make_room, stranger, join):
    room = make_room()
    client = api_client(stranger)
    spectator_id = join(client, room).json()["spectator_id"]

    response = leave(client, room)

    assert response.status_code == 204
    assert response.content == b""
    spectator = Spectator.objects.get(pk=spectator_id)
    assert spectator.left_at is not None
    assert spectator.left_reason == "left"


def test_anonymous_spectator_leaves_by_visitor_token(api_client, make_room, join):
    room = make_room()
    token = join(api_client(), room).json()["visitor_token"]
    other = api_client()
    assert join(other, room).status_code == 200

    assert leave(api_client(), room, visitor_token=token).status_code == 204

    assert present(room) == 1


def test_anonymous_spectator_leaves_by_session(api_client, make_room, join):
    room = make_room()
    client = api_client()
    join(client, room)

    assert leave(client, room).status_code == 204
    assert present(room) == 0


def test_leaving_frees_the_seat_and_rejoining_takes_a_new_one(api_client, make_room, stranger, join):
    room = make_room(max_spectators=1)
    client = api_client(stranger)
    first = join(client, room).json()["spectator_id"]
    leave(client, room)

    second = join(client, room)

    assert second.status_code == 200, second.json()
    assert second.json()["spectator_id"] != first


def test_leaving_a_room_you_are_not_in_is_not_an_error(api_client, make_room, stranger, join):
    room = make_room()
    join(api_client(), room)

    assert leave(api_client(stranger), room).status_code == 204
    assert leave(api_client(), room).status_code == 204
    assert leave(api_client(), room, visitor_token="not-a-real-token").status_code == 204
    assert present(room) == 1


def test_leaving_twice(api_client, make_room, stranger, join):
    room = make_room()
    client = api_client(stranger)
    join(client, room)

    assert leave(client, room).status_code == 204
    assert leave(client, room).status_code == 204


def test_leave_unknown_room(api_client, db):
    assert_api_error(leave(api_client(), "ZZZZZZ"), 404, "room_not_found")


def test_leave_private_room_as_stranger(api_client, make_room, stranger):
    room = make_room(access_level="private")

    assert_api_error(leave(api_client(stranger), room), 404, "room_not_found")


def test_leave_bad_visitor_token(api_client, make_room):
    room = make_room()

    assert_api_error(leave(api_client(), room, visitor_token="t" * 129), 400, "validation_error", "visitor_token")
