"""POST /api/v1/rooms/<ref>/join/: admitted (200 + ticket), pending (202) or refused with the reason."""

from datetime import timedelta

import pytest
from django.utils import timezone

from rooms.models import JoinRequest, Room, Spectator
from rooms.services import invitation_create, room_close
from rooms.tickets import InvalidTicket, ticket_read
from tests.api_errors import assert_api_error


def assert_admitted(response, room) -> dict:
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "approved"
    assert body["session_id"] == body["room_id"] == str(room.pk)
    assert body["room_code"] == room.code
    assert body["ticket"]
    assert body["ticket_expires_in"] == 120
    assert body["websocket_url"] == f"ws://testserver/ws/rooms/{room.code}/?ticket={body['ticket']}"
    assert Spectator.objects.get(pk=body["spectator_id"]).is_present
    return body


def assert_pending(response, room) -> dict:
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["status"] == "pending_approval"
    assert body["room_code"] == room.code
    assert JoinRequest.objects.get(pk=body["request_id"]).status == "pending"
    for admitted_only in ("ticket", "websocket_url", "spectator_id"):
        assert admitted_only not in body
    return body


# --- Admitted ---------------------------------------------------------------------------


def test_signed_in_user_joins_public_room(api_client, make_room, stranger, join):
    room = make_room()

    body = assert_admitted(join(api_client(stranger), room), room)

    assert body["display_name"] == "stranger"
    assert "visitor_token" not in body
    spectator = Spectator.objects.get(pk=body["spectator_id"])
    assert spectator.user == stranger
    assert spectator.anon_key == ""


def test_anonymous_visitor_joins_public_room_with_a_visitor_token(api_client, make_room, join):
    room = make_room()

    body = assert_admitted(join(api_client(), room, display_name="  Ann   Lee "), room)

    assert body["display_name"] == "Ann Lee"
    assert body["visitor_token"]
    spectator = Spectator.objects.get(pk=body["spectator_id"])
    assert spectator.user is None
    assert spectator.anon_key and body["visitor_token"] not in spectator.anon_key


def test_anonymous_visitor_gets_a_guest_name(api_client, make_room, join):
    room = make_room()

    body = assert_admitted(join(api_client(), room), room)

    assert body["display_name"].startswith("Guest-")


def test_joining_again_keeps_the_seat(api_client, make_room, stranger, join):
    room = make_room(max_spectators=1)
    client = api_client(stranger)

    first = assert_admitted(join(client, room), room)
    second = assert_admitted(join(client, room), room)

    assert first["spectator_id"] == second["spectator_id"]
    assert Spectator.objects.filter(room=room, left_at__isnull=True).count() == 1


def test_anonymous_rejoin_by_visitor_token_from_another_client(api_client, make_room, join):
    room = make_room(max_spectators=1)
    first = assert_admitted(join(api_client(), room), room)

    again = assert_admitted(join(api_client(), room, visitor_token=first["visitor_token"]), room)

    assert again["spectator_id"] == first["spectator_id"]
    assert again["visitor_token"] == first["visitor_token"]


def test_anonymous_rejoin_by_session_cookie(api_client, make_room, join):
    room = make_room()
    client = api_client()
    first = assert_admitted(join(client, room), room)

    again = assert_admitted(join(client, room), room)

    assert again["spectator_id"] == first["spectator_id"]


def test_join_by_lowercase_code_or_room_id(api_client, make_room, join):
    room = make_room()

    assert_admitted(join(api_client(), room.code.lower()), room)
    assert_admitted(join(api_client(), str(room.pk)), room)


def test_websocket_url_is_wss_over_https(api_client, make_room):
    room = make_room()

    response = api_client().post(f"/api/v1/rooms/{room.code}/join/", {}, format="json", secure=True)

    assert response.status_code == 200, response.json()
    assert response.json()["websocket_url"].startswith(f"wss://testserver/ws/rooms/{room.code}/?ticket=")


def test_join_ticket_opens_only_its_own_room(api_client, make_room, join):
    room, other = make_room(), make_room()
    body = assert_admitted(join(api_client(), room), room)

    ticket = ticket_read(body["ticket"], room_id=room.pk)

    assert ticket.room_id == str(room.pk)
    assert ticket.spectator_id == body["spectator_id"]
    with pytest.raises(InvalidTicket):
        ticket_read(body["ticket"], room_id=other.pk)
    with pytest.raises(InvalidTicket):
        ticket_read(body["ticket"] + "x", room_id=room.pk)
    with pytest.raises(InvalidTicket):
        ticket_read(body["ticket"], room_id=room.pk, max_age=-1)


def test_owner_is_admitted_to_every_kind_of_room_without_counting(api_client, make_room, owner, join):
    rooms = [
        make_room(access_level="password"),
        make_room(access_level="invite_only"),
        make_room(access_level="private"),
        make_room(require_approval=True, max_spectators=1),
    ]

    for room in rooms:
        assert_admitted(join(api_client(owner), room), room)
    assert api_client().get(f"/api/v1/rooms/{rooms[3].code}/").json()["current_spectators"] == 1


# --- Pending and approval -----------------------------------------------------------------


def test_anonymous_join_pending_then_admitted_after_approval(api_client, make_room, owner, join):
    room = make_room(require_approval=True)

    pending = assert_pending(join(api_client(), room, display_name="Ann", message="let me in"), room)
    token = pending["visitor_token"]
    assert token
    join_request = JoinRequest.objects.get(pk=pending["request_id"])
    assert (join_request.display_name, join_request.message, join_request.user) == ("Ann", "let me in", None)

    polled = assert_pending(join(api_client(), room, visitor_token=token), room)
    assert polled["request_id"] == pending["request_id"]
    assert JoinRequest.objects.filter(room=room).count() == 1

    approve = api_client(owner).post(f"/api/v1/rooms/{room.code}/join-requests/{pending['request_id']}/approve/")
    assert approve.status_code == 200, approve.json()

    admitted = assert_admitted(join(api_client(), room, visitor_token=token), room)
    assert admitted["visitor_token"] == token
    assert admitted["display_name"] == "Ann"


def test_signed_in_join_pending_then_admitted(api_client, make_room, owner, stranger, join):
    room = make_room(require_approval=True)
    client = api_client(stranger)

    pending = assert_pending(join(client, room, display_name="Stranger Danger"), room)
    assert "visitor_token" not in pending
    assert assert_pending(join(client, room), room)["request_id"] == pending["request_id"]

    api_client(owner).post(f"/api/v1/rooms/{room.code}/join-requests/{pending['request_id']}/approve/")

    assert assert_admitted(join(client, room), room)["display_name"] == "Stranger Danger"


def test_denied_request_refuses_with_join_denied(api_client, make_room, owner, join):
    room = make_room(require_approval=True)
    pending = assert_pending(join(api_client(), room), room)

    deny = api_client(owner).post(f"/api/v1/rooms/{room.code}/join-requests/{pending['request_id']}/deny/")
    assert deny.status_code == 200, deny.json()

    assert_api_error(join(api_client(), room, visitor_token=pending["visitor_token"]), 403, "join_denied")


def test_pending_request_is_auto_approved_after_the_timeout(api_client, make_room, join):
    room = make_room(require_approval=True, auto_approve_timeout=60)
    pending = assert_pending(join(api_client(), room), room)
    JoinRequest.objects.filter(pk=pending["request_id"]).update(created_at=timezone.now() - timedelta(seconds=61))

    assert_admitted(join(api_client(), room, visitor_token=pending["visitor_token"]), room)
    assert JoinRequest.objects.get(pk=pending["request_id"]).auto_approved is True


def test_invited_user_skips_approval(api_client, make_room, make_user, join):
    make_user("alice")
    room = make_room(require_approval=True, allowed_users=["alice"])

    from django.contrib.auth import get_user_model

    assert_admitted(join(api_client(get_user_model().objects.get(username="alice")), room), room)


# --- Refused ---------------------------------------------------------------------------------


def test_unknown_room(api_client, db, join):
    assert_api_error(join(api_client(), "ZZZZZZ"), 404, "room_not_found")


def test_private_room_looks_missing_to_strangers(api_client, make_room, stranger, make_user, join):
    alice = make_user("alice")
    room = make_room(access_level="private", allowed_users=["alice"])

    assert_api_error(join(api_client(), room), 404, "room_not_found")
    assert_api_error(join(api_client(stranger), room), 404, "room_not_found")
    assert_admitted(join(api_client(alice), room), room)


def test_full_room(api_client, make_room, make_user, join):
    room = make_room(max_spectators=1)
    first = api_client(make_user())
    assert_admitted(join(first, room), room)

    assert_api_error(join(api_client(make_user()), room), 409, "room_full")
    assert_api_error(join(api_client(), room), 409, "room_full")

    assert first.post(f"/api/v1/rooms/{room.code}/leave/", {}, format="json").status_code == 204
    assert_admitted(join(api_client(), room), room)


def test_closed_room(api_client, make_room, owner, stranger, join):
    room = make_room()
    room_close(room=room, actor=owner)

    assert_api_error(join(api_client(), room), 410, "room_closed")
    assert_api_error(join(api_client(stranger), room), 410, "room_closed")
    assert_api_error(join(api_client(owner), room), 410, "room_closed")


@pytest.mark.parametrize("swept", [False, True])
def test_expired_room(api_client, make_room, owner, join, swept):
    room = make_room()
    changes = {"expires_at": timezone.now() - timedelta(seconds=1)}
    if swept:
        changes["status"] = Room.Status.EXPIRED
    Room.objects.filter(pk=room.pk).update(**changes)

    assert_api_error(join(api_client(), room), 410, "room_expired")
    assert_api_error(join(api_client(owner), room), 410, "room_expired")


def test_banned_user(api_client, make_room, make_user, join):
    mallory = make_user("mallory")
    room = make_room(blocked_users=["mallory"])

    assert_api_error(join(api_client(mallory), room), 403, "banned")


def test_invite_only_room(api_client, make_room, make_user, stranger, owner, join):
    alice, bob = make_user("alice"), make_user("bob")
    room = make_room(access_level="invite_only", allowed_users=["alice"])
    invitation_create(room=room, username="bob", actor=owner)

    assert_api_error(join(api_client(), room), 401, "sign_in_required")
    assert_api_error(join(api_client(stranger), room), 403, "not_invited")
    assert_admitted(join(api_client(alice), room), room)
    assert_admitted(join(api_client(bob), room), room)


def test_password_room(api_client, make_room, join):
    room = make_room(access_level="password", password="open sesame")

    assert_api_error(join(api_client(), room), 403, "password_required")
    assert_api_error(join(api_client(), room, password=""), 403, "password_required")
    assert_api_error(join(api_client(), room, password="open sesam"), 403, "wrong_password")
    assert_api_error(join(api_client(), room, password="Open Sesame"), 403, "wrong_password")
    assert_admitted(join(api_client(), room, password="open sesame"), room)


def test_generated_password_admits(api_client, make_room, join):
    room = make_room(access_level="password")

    assert_admitted(join(api_client(), room, password=room.plain_password), room)


def test_password_not_asked_again_of_someone_present(api_client, make_room, stranger, join):
    room = make_room(access_level="password", password="open sesame")
    client = api_client(stranger)
    assert_admitted(join(client, room, password="open sesame"), room)

    assert_admitted(join(client, room), room)


def test_allowed_user_skips_the_password(api_client, make_room, make_user, join):
    alice = make_user("alice")
    room = make_room(access_level="password", allowed_users=["alice"])

    assert_admitted(join(api_client(alice), room), room)


def test_password_then_approval(api_client, make_room, owner, join):
    room = make_room(access_level="password", password="open sesame", require_approval=True)

    assert_api_error(join(api_client(), room), 403, "password_required")
    pending = assert_pending(join(api_client(), room, password="open sesame"), room)
    api_client(owner).post(f"/api/v1/rooms/{room.code}/join-requests/{pending['request_id']}/approve/")

    # Approved: the password is not asked again.
    assert_admitted(join(api_client(), room, visitor_token=pending["visitor_token"]), room)


# --- Input ---------------------------------------------------------------------------------


def test_user_id_naming_someone_else_is_refused(api_client, make_room, stranger, join):
    room = make_room()

    body = assert_api_error(join(api_client(stranger), room, user_id="owner"), 403, "permission_denied")
    assert "user_id" in body["detail"]
    assert_api_error(join(api_client(), room, user_id="owner"), 403, "permission_denied")
    assert not Spectator.objects.exists()


def test_user_id_naming_oneself_or_by_staff(api_client, make_room, stranger, staff, join):
    room = make_room()

    assert_admitted(join(api_client(stranger), room, user_id="stranger"), room)
    assert_admitted(join(api_client(staff), room, user_id="stranger"), room)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"display_name": "x" * 65}, "display_name"),
        ({"display_name": "bell\x07"}, "display_name"),
        ({"display_name": "nul\x00"}, "display_name"),
        ({"message": "m" * 501}, "message"),
        ({"password": "p" * 129}, "password"),
        ({"visitor_token": "t" * 129}, "visitor_token"),
    ],
)
def test_bad_input_names_the_field(api_client, make_room, join, body, field):
    room = make_room()

    assert_api_error(join(api_client(), room, **body), 400, "validation_error", field)
    assert not Spectator.objects.exists()
