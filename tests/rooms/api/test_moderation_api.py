"""Moderation API: lock, admit all, the waiting room, moderators, timeouts, scoped bans, invite
links (one-click joins), listing, expiring approvals and the audit trail (JSON and CSV)."""

import csv
import io

import pytest

from rooms.models import AuditEntry, Ban, InviteLink, JoinRequest, Spectator
from tests.api_errors import assert_api_error


def url(room, suffix=""):
    return f"/api/v1/rooms/{room.code}/{suffix}"


@pytest.fixture
def owner_api(api_client, owner):
    return api_client(owner)


def test_lock_and_unlock(owner_api, make_room, api_client, stranger, join):
    room = make_room()
    response = owner_api.post(url(room, "lock/"))
    assert response.status_code == 200 and response.json()["access_control"]["locked"] is True
    assert_api_error(join(api_client(stranger), room), 403, "room_locked")
    response = owner_api.post(url(room, "unlock/"))
    assert response.json()["access_control"]["locked"] is False
    assert join(api_client(stranger), room).status_code == 200
    assert_api_error(api_client(stranger).post(url(room, "lock/")), 403, "permission_denied")


def test_admit_all_and_the_waiting_place(owner_api, make_room, api_client, make_user, join):
    room = make_room(require_approval=True)
    owner_api.patch(url(room, "access/"), {"waiting_message": "Starting at 3 pm"}, format="json")
    clients = [api_client(make_user(f"viewer{n}")) for n in range(3)]
    places = [join(client, room).json() for client in clients]
    assert [body["place"] for body in places] == [1, 2, 3]
    assert {body["waiting_message"] for body in places} == {"Starting at 3 pm"}
    response = owner_api.post(url(room, "join-requests/admit-all/"))
    assert response.status_code == 200 and response.json() == {"admitted": 3}
    for client in clients:
        assert join(client, room).status_code == 200


def test_send_to_waiting(owner_api, make_room, api_client, stranger, join):
    room = make_room(require_approval=True)
    client = api_client(stranger)
    request_id = join(client, room).json()["request_id"]
    owner_api.post(url(room, f"join-requests/{request_id}/approve/"), {}, format="json")
    spectator_id = join(client, room).json()["spectator_id"]
    response = owner_api.post(url(room, f"spectators/{spectator_id}/send-to-waiting/"))
    assert response.status_code == 200 and response.json()["status"] == JoinRequest.Status.PENDING
    assert join(client, room).status_code == 202
    assert_api_error(
        owner_api.post(url(room, f"spectators/{spectator_id}/send-to-waiting/")),
        400,
        "validation_error",
        "spectator_id",
    )
    assert owner_api.post(url(room, "spectators/999999/send-to-waiting/")).status_code == 404


def test_send_to_waiting_needs_approval_on(owner_api, make_room, api_client, stranger, join):
    room = make_room()
    spectator_id = join(api_client(stranger), room).json()["spectator_id"]
    response = owner_api.post(url(room, f"spectators/{spectator_id}/send-to-waiting/"))
    assert_api_error(response, 400, "validation_error", "require_approval")


def test_moderators(owner_api, make_room, api_client, make_user):
    room = make_room()
    mod = make_user("mod")
    response = owner_api.post(url(room, "moderators/"), {"username": "mod"}, format="json")
    assert response.status_code == 201 and response.json()["username"] == "mod"
    assert owner_api.post(url(room, "moderators/"), {"username": "mod"}, format="json").status_code == 200
    assert [m["username"] for m in owner_api.get(url(room, "moderators/")).json()] == ["mod"]
    mod_api = api_client(mod)
    assert mod_api.get(url(room, "join-requests/")).status_code == 200  # manages
    assert mod_api.get(url(room)).json()["can_manage"] is True
    assert room.code in [item["room_code"] for item in mod_api.get("/api/v1/rooms/").json()["results"]]
    assert_api_error(mod_api.post(url(room, "close/"), {}, format="json"), 403, "permission_denied")
    assert_api_error(owner_api.post(url(room, "moderators/"), {}, format="json"), 400, "validation_error", "username")
    assert_api_error(
        owner_api.post(url(room, "moderators/"), {"username": "ghost"}, format="json"),
        400,
        "validation_error",
        "username",
    )
    assert owner_api.delete(url(room, "moderators/mod/")).status_code == 204
    assert owner_api.delete(url(room, "moderators/mod/")).status_code == 404
    assert_api_error(mod_api.get(url(room, "join-requests/")), 403, "permission_denied")


def test_timeouts(owner_api, make_room, api_client, stranger, join):
    room = make_room()
    spectator_id = join(api_client(stranger), room).json()["spectator_id"]
    response = owner_api.post(
        url(room, "timeouts/"), {"spectator_id": spectator_id, "duration_seconds": 300}, format="json"
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["username"] == "stranger" and body["expires_at"]
    assert Spectator.objects.get(pk=spectator_id).left_reason == Spectator.LeftReason.SUSPENDED
    assert_api_error(join(api_client(stranger), room), 403, "timed_out")
    assert [t["ban_id"] for t in owner_api.get(url(room, "timeouts/")).json()] == [body["ban_id"]]
    assert owner_api.get(url(room, "bans/")).json() == []  # timeouts are not bans
    assert owner_api.delete(url(room, f"timeouts/{body['ban_id']}/")).status_code == 204
    assert join(api_client(stranger), room).status_code == 200


@pytest.mark.parametrize(
    "body, field",
    [
        ({"username": "stranger"}, "duration_seconds"),
        ({"username": "stranger", "duration_seconds": 0}, "duration_seconds"),
        ({"username": "stranger", "duration_seconds": 10**9}, "duration_seconds"),
        ({"duration_seconds": 60}, "username"),
        ({"username": "stranger", "spectator_id": 1, "duration_seconds": 60}, "username"),
        ({"username": "ghost", "duration_seconds": 60}, "username"),
        ({"spectator_id": 999999, "duration_seconds": 60}, "spectator_id"),
        ({"username": "owner", "duration_seconds": 60}, "username"),
    ],
)
def test_timeout_bad_input_names_the_field(owner_api, make_room, stranger, body, field):
    room = make_room()
    assert_api_error(owner_api.post(url(room, "timeouts/"), body, format="json"), 400, "validation_error", field)


def test_owner_wide_ban_through_the_api(owner_api, make_room, api_client, stranger, join):
    first, second = make_room(), make_room()
    response = owner_api.post(url(first, "bans/"), {"username": "stranger", "scope": "owner"}, format="json")
    assert response.status_code == 201 and response.json()["scope"] == "owner"
    assert_api_error(join(api_client(stranger), second), 403, "banned")
    assert [ban["username"] for ban in owner_api.get(url(second, "bans/")).json()] == ["stranger"]
    ban_id = response.json()["ban_id"]
    assert owner_api.delete(url(second, f"bans/{ban_id}/")).status_code == 204  # lifted from any of its rooms
    assert join(api_client(stranger), second).status_code == 200
    assert owner_api.delete(url(make_room(), "bans/999999/")).status_code == 404
    assert_api_error(
        owner_api.post(url(first, "bans/"), {"username": "stranger", "scope": "galaxy"}, format="json"),
        400,
        "validation_error",
        "scope",
    )


def test_invite_link_joins_a_password_room_in_one_call(owner_api, make_room, api_client, join):
    room = make_room(access_level="password")
    response = owner_api.post(url(room, "invite-links/"), {"grants_password": True, "label": "Friends"}, format="json")
    assert response.status_code == 201, response.json()
    created = response.json()
    assert created["url"].endswith(f"/r/{room.code}/?invite={created['token']}")
    assert created["grants_password"] is True and created["uses"] == 0
    link = InviteLink.objects.get(pk=created["link_id"])
    assert created["token"] not in link.secret_hash
    joined = join(api_client(), room, invite_token=created["token"])
    assert joined.status_code == 200, joined.json()
    listed = owner_api.get(url(room, "invite-links/")).json()
    assert listed[0]["uses"] == 1 and "token" not in listed[0]
    assert owner_api.delete(url(room, f"invite-links/{created['link_id']}/")).status_code == 204
    assert owner_api.get(url(room, "invite-links/")).json() == []
    assert_api_error(join(api_client(), room, invite_token=created["token"]), 403, "invite_link_invalid")
    assert_api_error(join(api_client(), room, invite_token="forged"), 403, "invite_link_invalid")


def test_invite_link_for_one_user(owner_api, make_room, api_client, make_user, join):
    room = make_room(access_level="invite_only")
    alice, bob = make_user("alice"), make_user("bob")
    token = owner_api.post(url(room, "invite-links/"), {"username": "alice"}, format="json").json()["token"]
    assert_api_error(join(api_client(bob), room, invite_token=token), 403, "invite_link_not_yours")
    assert join(api_client(alice), room, invite_token=token).status_code == 200


@pytest.mark.parametrize(
    "body, field",
    [
        ({"expires_in_hours": 0}, "expires_in_hours"),
        ({"expires_in_hours": 100000}, "expires_in_hours"),
        ({"username": "ghost"}, "username"),
        ({"grants_password": "maybe"}, "grants_password"),
        ({"label": "x" * 101}, "label"),
    ],
)
def test_invite_link_bad_input_names_the_field(owner_api, make_room, body, field):
    room = make_room()
    assert_api_error(owner_api.post(url(room, "invite-links/"), body, format="json"), 400, "validation_error", field)


def test_private_rooms_get_no_invite_links(owner_api, make_room):
    room = make_room(access_level="private")
    assert_api_error(
        owner_api.post(url(room, "invite-links/"), {}, format="json"), 400, "validation_error", "access_level"
    )


def test_listing_and_approval_ttl_through_access(owner_api, make_room, api_client):
    room = make_room()
    response = owner_api.patch(url(room, "access/"), {"listed": False, "approval_ttl": 86400}, format="json")
    assert response.status_code == 200
    control = response.json()["access_control"]
    assert control["listed"] is False and control["approval_ttl"] == 86400
    public = api_client().get("/api/v1/rooms/public/").json()["results"]
    assert room.code not in {item["room_code"] for item in public}
    assert api_client().get(url(room)).status_code == 200  # still reachable by its link
    assert_api_error(
        owner_api.patch(url(room, "access/"), {"approval_ttl": -1}, format="json"),
        400,
        "validation_error",
        "approval_ttl",
    )
    assert_api_error(
        owner_api.patch(url(room, "access/"), {"waiting_message": "x" * 501}, format="json"),
        400,
        "validation_error",
        "waiting_message",
    )


def test_audit_list_and_csv(owner_api, make_room, api_client, stranger, join):
    room = make_room(require_approval=True)
    join(api_client(stranger), room, display_name='=HYPERLINK("x")')
    owner_api.post(url(room, "join-requests/admit-all/"), REMOTE_ADDR="203.0.113.7")
    owner_api.post(url(room, "lock/"))
    response = owner_api.get(url(room, "audit/"))
    assert response.status_code == 200
    entries = response.json()["results"]
    assert [entry["action"] for entry in entries] == ["lock", "admit_all", "admit"]
    admit = entries[2]
    assert admit["actor"] == "owner" and admit["target"] == '=HYPERLINK("x")' and admit["ip"] == "203.0.113.7"
    csv_response = owner_api.get(url(room, "audit.csv"))
    assert csv_response.status_code == 200 and csv_response["Content-Type"].startswith("text/csv")
    assert f"audit-{room.code}.csv" in csv_response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(csv_response.streaming_content).decode())))
    assert rows[0] == ["created_at", "room_code", "action", "actor", "target", "ip", "details"]
    assert [row[2] for row in rows[1:]] == ["lock", "admit_all", "admit"]
    assert rows[3][4] == '\'=HYPERLINK("x")'  # no formula reaches a spreadsheet
    assert AuditEntry.objects.filter(room=room).count() == 3


def test_every_api_action_is_audited_with_its_address(owner_api, make_room, api_client, stranger, join):
    room = make_room(access_level="password", require_approval=True)
    owner_api.post(url(room, "password/"), REMOTE_ADDR="198.51.100.1")
    owner_api.patch(url(room, "access/"), {"access_level": "public"}, format="json", REMOTE_ADDR="198.51.100.1")
    assert set(AuditEntry.objects.filter(room=room, ip="198.51.100.1").values_list("action", flat=True)) == {
        "password_regenerate",
        "level_change",
    }


def test_moderation_routes_refuse_strangers(make_room, api_client, stranger):
    room = make_room()
    client = api_client(stranger)
    for method, suffix in [
        ("post", "unlock/"),
        ("post", "join-requests/admit-all/"),
        ("get", "moderators/"),
        ("get", "timeouts/"),
        ("get", "invite-links/"),
        ("get", "audit/"),
        ("get", "audit.csv"),
    ]:
        assert_api_error(getattr(client, method)(url(room, suffix)), 403, "permission_denied")
    assert Ban.objects.count() == 0
