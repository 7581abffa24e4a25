"""Join requests: list (managers), approve and deny; refusals for strangers, unknown and decided requests."""

import pytest

from rooms.models import JoinRequest
from tests.api_errors import assert_api_error


def requests_url(room, suffix=""):
    return f"/api/v1/rooms/{room.code}/join-requests/{suffix}"


def decide(client, room, request_id, verb, **data):
    return client.post(requests_url(room, f"{request_id}/{verb}/"), data, format="json")


@pytest.fixture
def room(make_room):
    return make_room(require_approval=True)


@pytest.fixture
def pending_id(room, api_client, join):
    response = join(api_client(), room, display_name="Ann", message="hi")
    assert response.status_code == 202, response.json()
    return response.json()["request_id"]


def test_owner_lists_pending_requests(api_client, owner, room, pending_id, stranger, join):
    join(api_client(stranger), room)

    response = api_client(owner).get(requests_url(room))

    assert response.status_code == 200, response.json()
    body = response.json()
    assert [item["display_name"] for item in body] == ["Ann", "stranger"]
    ann, signed_in = body
    assert ann["request_id"] == pending_id
    assert ann["username"] is None
    assert ann["message"] == "hi"
    assert ann["status"] == "pending"
    assert ann["decided_by"] is None
    assert signed_in["username"] == "stranger"


def test_list_filters_by_status(api_client, owner, room, pending_id, stranger, join):
    other = join(api_client(stranger), room).json()["request_id"]
    decide(api_client(owner), room, other, "deny")
    client = api_client(owner)

    assert [item["request_id"] for item in client.get(requests_url(room)).json()] == [pending_id]
    assert [item["request_id"] for item in client.get(requests_url(room) + "?status=denied").json()] == [other]
    assert len(client.get(requests_url(room) + "?status=all").json()) == 2
    assert client.get(requests_url(room) + "?status=approved").json() == []


def test_list_bad_status(api_client, owner, room):
    assert_api_error(api_client(owner).get(requests_url(room) + "?status=maybe"), 400, "validation_error", "status")


def test_staff_lists_requests(api_client, staff, room, pending_id):
    assert api_client(staff).get(requests_url(room)).status_code == 200


def test_list_refused_to_non_managers(api_client, room, stranger, pending_id):
    assert_api_error(api_client(stranger).get(requests_url(room)), 403, "permission_denied")
    assert_api_error(api_client().get(requests_url(room)), 401, "not_authenticated")


def test_list_of_private_room_looks_missing_to_strangers(api_client, make_room, stranger):
    room = make_room(access_level="private", require_approval=True)

    assert_api_error(api_client(stranger).get(requests_url(room)), 404, "room_not_found")


@pytest.mark.parametrize(("verb", "status"), [("approve", "approved"), ("deny", "denied")])
def test_owner_decides(api_client, owner, room, pending_id, verb, status):
    response = decide(api_client(owner), room, pending_id, verb)

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["request_id"] == pending_id
    assert body["status"] == status
    assert body["decided_by"] == "owner"
    assert body["decided_at"]
    assert body["auto_approved"] is False
    assert JoinRequest.objects.get(pk=pending_id).status == status


@pytest.mark.parametrize("verb", ["approve", "deny"])
def test_staff_decides(api_client, staff, room, pending_id, verb):
    response = decide(api_client(staff), room, pending_id, verb)

    assert response.status_code == 200, response.json()
    assert response.json()["decided_by"] == "moderator"


@pytest.mark.parametrize("verb", ["approve", "deny"])
def test_non_manager_cannot_decide(api_client, room, pending_id, stranger, verb):
    assert_api_error(decide(api_client(stranger), room, pending_id, verb), 403, "permission_denied")
    assert_api_error(decide(api_client(), room, pending_id, verb), 401, "not_authenticated")
    assert JoinRequest.objects.get(pk=pending_id).status == "pending"


@pytest.mark.parametrize("verb", ["approve", "deny"])
def test_unknown_request(api_client, owner, room, pending_id, verb):
    assert_api_error(decide(api_client(owner), room, pending_id + 1000, verb), 404, "not_found")


def test_request_of_another_room_is_not_found_here(api_client, owner, make_room, pending_id):
    other = make_room(require_approval=True)

    assert_api_error(decide(api_client(owner), other, pending_id, "approve"), 404, "not_found")
    assert JoinRequest.objects.get(pk=pending_id).status == "pending"


def test_decide_in_unknown_room(api_client, owner, pending_id, db):
    response = api_client(owner).post(f"/api/v1/rooms/ZZZZZZ/join-requests/{pending_id}/approve/")

    assert_api_error(response, 404, "room_not_found")


@pytest.mark.parametrize(("first", "second"), [("approve", "approve"), ("approve", "deny"), ("deny", "approve")])
def test_deciding_twice(api_client, owner, room, pending_id, first, second):
    client = api_client(owner)
    assert decide(client, room, pending_id, first).status_code == 200

    assert_api_error(decide(client, room, pending_id, second), 400, "validation_error", "status")


def test_actor_id_naming_someone_else_needs_staff(api_client, owner, staff, room, pending_id, make_user):
    make_user("other")

    body = assert_api_error(
        decide(api_client(owner), room, pending_id, "approve", actor_id="other"), 403, "permission_denied"
    )
    assert "actor_id" in body["detail"]
    response = decide(api_client(staff), room, pending_id, "approve", actor_id="owner")
    assert response.status_code == 200, response.json()


def test_actor_id_naming_oneself(api_client, owner, room, pending_id):
    assert decide(api_client(owner), room, pending_id, "deny", actor_id="owner").status_code == 200


def test_closing_the_room_expires_pending_requests(api_client, owner, room, pending_id):
    api_client(owner).post(f"/api/v1/rooms/{room.code}/close/")

    assert JoinRequest.objects.get(pk=pending_id).status == "expired"
    assert_api_error(decide(api_client(owner), room, pending_id, "approve"), 400, "validation_error", "status")
