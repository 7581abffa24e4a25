"""Invitations: list, create (201, then 200 for the same user), revoke (204); managers only."""

import pytest

from rooms.models import Invitation
from tests.api_errors import assert_api_error


def invitations_url(room, suffix=""):
    return f"/api/v1/rooms/{room.code}/invitations/{suffix}"


@pytest.fixture
def room(make_room):
    return make_room(access_level="invite_only")


@pytest.fixture
def alice(make_user):
    return make_user("alice")


def test_invite_then_invite_again_is_idempotent(api_client, owner, room, alice):
    client = api_client(owner)

    created = client.post(invitations_url(room), {"username": "alice"}, format="json")
    again = client.post(invitations_url(room), {"username": "alice"}, format="json")

    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["username"] == "alice"
    assert body["invited_by"] == "owner"
    assert body["revoked_at"] is None
    assert again.status_code == 200, again.json()
    assert again.json()["invitation_id"] == body["invitation_id"]
    assert Invitation.objects.filter(room=room).count() == 1


def test_invitation_lets_the_user_in(api_client, owner, room, alice, join):
    assert join(api_client(alice), room).status_code == 403
    api_client(owner).post(invitations_url(room), {"username": "alice"}, format="json")

    assert join(api_client(alice), room).status_code == 200


def test_list_invitations(api_client, owner, room, alice, make_user):
    make_user("bob")
    client = api_client(owner)
    for username in ("alice", "bob"):
        client.post(invitations_url(room), {"username": username}, format="json")

    response = client.get(invitations_url(room))

    assert response.status_code == 200, response.json()
    assert sorted(item["username"] for item in response.json()) == ["alice", "bob"]


def test_revoke(api_client, owner, room, alice, join):
    client = api_client(owner)
    invitation_id = client.post(invitations_url(room), {"username": "alice"}, format="json").json()["invitation_id"]

    response = client.delete(invitations_url(room, f"{invitation_id}/"))

    assert response.status_code == 204
    assert Invitation.objects.get(pk=invitation_id).revoked_at is not None
    assert client.get(invitations_url(room)).json() == []
    assert_api_error(join(api_client(alice), room), 403, "not_invited")
    # Revoking again is harmless; inviting again makes a new invitation.
    assert client.delete(invitations_url(room, f"{invitation_id}/")).status_code == 204
    again = client.post(invitations_url(room), {"username": "alice"}, format="json")
    assert again.status_code == 201
    assert again.json()["invitation_id"] != invitation_id


@pytest.mark.parametrize(("body", "field"), [({"username": "nobody"}, "username"), ({}, "username")])
def test_bad_username(api_client, owner, room, body, field):
    assert_api_error(api_client(owner).post(invitations_url(room), body, format="json"), 400, "validation_error", field)
    assert not Invitation.objects.exists()


def test_revoke_unknown_invitation(api_client, owner, room):
    assert_api_error(api_client(owner).delete(invitations_url(room, "999/")), 404, "not_found")


def test_revoke_invitation_of_another_room(api_client, owner, room, alice, make_room):
    client = api_client(owner)
    invitation_id = client.post(invitations_url(room), {"username": "alice"}, format="json").json()["invitation_id"]
    other = make_room(access_level="invite_only")

    assert_api_error(client.delete(invitations_url(other, f"{invitation_id}/")), 404, "not_found")
    assert Invitation.objects.get(pk=invitation_id).revoked_at is None


def test_non_managers_are_refused(api_client, room, alice, stranger, owner):
    invitation_id = (
        api_client(owner).post(invitations_url(room), {"username": "alice"}, format="json").json()["invitation_id"]
    )

    for client, status, error in (
        (api_client(stranger), 403, "permission_denied"),
        (api_client(), 401, "not_authenticated"),
    ):
        assert_api_error(client.get(invitations_url(room)), status, error)
        assert_api_error(client.post(invitations_url(room), {"username": "stranger"}, format="json"), status, error)
        assert_api_error(client.delete(invitations_url(room, f"{invitation_id}/")), status, error)
    # An invited user does not manage the room either.
    assert_api_error(api_client(alice).get(invitations_url(room)), 403, "permission_denied")
    assert Invitation.objects.filter(revoked_at__isnull=True).count() == 1


def test_private_room_invitations_look_missing_to_strangers(api_client, make_room, stranger):
    room = make_room(access_level="private")

    assert_api_error(api_client(stranger).get(invitations_url(room)), 404, "room_not_found")
    assert_api_error(
        api_client(stranger).post(invitations_url(room), {"username": "stranger"}, format="json"), 404, "room_not_found"
    )


def test_staff_invites(api_client, staff, room, alice):
    response = api_client(staff).post(invitations_url(room), {"username": "alice"}, format="json")

    assert response.status_code == 201, response.json()
    assert response.json()["invited_by"] == "moderator"
