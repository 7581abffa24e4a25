"""POST /api/v1/rooms/: create a room of each access level; refusals name the field."""

import pytest

from metrics.services import training_session_close, training_session_create
from rooms.models import Ban, Room
from rooms.passwords import room_password_matches as check_password
from tests.api_errors import assert_api_error

URL = "/api/v1/rooms/"
PASSWORD_LEVELS = ["password"]
PASSWORDLESS_LEVELS = ["public", "invite_only", "private"]


def create(client, training_session, **body):
    body.setdefault("training_session_id", training_session.id)
    return client.post(URL, body, format="json")


@pytest.mark.parametrize("level", PASSWORDLESS_LEVELS)
def test_create_room_of_each_passwordless_level(owner_client, training_session, level):
    response = create(owner_client, training_session, access_control={"access_level": level})

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["room_password"] is None
    assert body["access_control"]["access_level"] == level
    assert body["access_control"]["password_protected"] is False
    assert body["training_session_id"] == training_session.id
    assert body["creator_id"] == "owner"
    assert body["room_status"] == "active"
    assert body["current_spectators"] == 0
    assert body["can_manage"] is True
    assert body["pending_requests"] == 0
    room = Room.objects.get(pk=body["room_id"])
    assert room.code == body["room_code"]
    assert room.access_level == level
    assert room.password_hash == ""


def test_create_password_room_generates_a_password_returned_once(owner_client, training_session, api_client):
    response = create(owner_client, training_session, access_control={"access_level": "password"})

    assert response.status_code == 201, response.json()
    body = response.json()
    password = body["room_password"]
    assert isinstance(password, str) and len(password) >= 12
    assert body["access_control"]["password_protected"] is True
    room = Room.objects.get(pk=body["room_id"])
    assert room.password_hash != password
    assert check_password(password, room.password_hash)
    for client in (owner_client, api_client()):
        detail = client.get(f"{URL}{body['room_code']}/").json()
        assert "room_password" not in detail
        assert password not in str(detail)
    listed = owner_client.get(URL).json()["results"]
    assert "room_password" not in listed[0]


def test_create_password_room_with_chosen_password(owner_client, training_session):
    response = create(
        owner_client, training_session, access_control={"access_level": "password", "password": "open sesame"}
    )

    assert response.status_code == 201, response.json()
    assert response.json()["room_password"] == "open sesame"
    assert check_password("open sesame", Room.objects.get(pk=response.json()["room_id"]).password_hash)


def test_create_defaults_to_a_public_room(owner_client, training_session):
    response = create(owner_client, training_session)

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["access_control"] == {
        "access_level": "public",
        "password_protected": False,
        "max_spectators": 10,
        "require_approval": False,
        "auto_approve_timeout": 0,
        "approval_ttl": 0,
        "locked": False,
        "listed": True,
        "allowed_users": [],
        "blocked_users": [],
    }
    assert body["spectator_mode"] == "live_training"
    assert len(body["room_code"]) == 6


def test_create_with_every_option(owner_client, training_session, make_user):
    make_user("alice")
    make_user("mallory")
    response = create(
        owner_client,
        training_session,
        name="Night run",
        room_duration_hours=2,
        custom_room_code="abc234",
        spectator_mode="comparison",
        enable_metrics_overlay=False,
        enable_performance_graphs=False,
        enable_decision_visualization=False,
        access_control={
            "access_level": "invite_only",
            "max_spectators": 3,
            "allowed_users": ["alice"],
            "blocked_users": ["mallory"],
            "require_approval": True,
            "auto_approve_timeout": 60,
        },
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["room_code"] == "ABC234"
    assert body["name"] == "Night run"
    assert body["spectator_mode"] == "comparison"
    assert body["enable_metrics_overlay"] is body["enable_performance_graphs"] is False
    assert body["enable_decision_visualization"] is False
    assert body["access_control"]["allowed_users"] == ["alice"]
    assert body["access_control"]["blocked_users"] == ["mallory"]
    assert body["access_control"]["max_spectators"] == 3
    assert body["access_control"]["require_approval"] is True
    assert body["access_control"]["auto_approve_timeout"] == 60
    room = Room.objects.get(code="ABC234")
    assert (room.expires_at - room.created_at).total_seconds() == pytest.approx(7200, abs=5)
    assert Ban.objects.filter(room=room, user__username="mallory", lifted_at__isnull=True).exists()


def test_anonymous_cannot_create(api_client, training_session):
    assert_api_error(create(api_client(), training_session), 401, "not_authenticated")


def test_creator_id_naming_someone_else_is_refused(api_client, training_session, stranger):
    response = create(api_client(stranger), training_session, creator_id="owner")

    body = assert_api_error(response, 403, "permission_denied")
    assert "creator_id" in body["detail"]
    assert not Room.objects.exists()


def test_creator_id_naming_oneself_is_fine(owner_client, training_session):
    response = create(owner_client, training_session, creator_id="owner")

    assert response.status_code == 201, response.json()
    assert response.json()["creator_id"] == "owner"


def test_staff_may_create_for_someone_else(api_client, training_session, staff):
    response = create(api_client(staff), training_session, creator_id="owner")

    assert response.status_code == 201, response.json()
    assert response.json()["creator_id"] == "owner"
    assert Room.objects.get().creator.username == "owner"


def test_staff_naming_an_unknown_creator(api_client, training_session, staff):
    assert_api_error(
        create(api_client(staff), training_session, creator_id="nobody"), 400, "validation_error", "creator_id"
    )


def test_training_session_of_someone_else_looks_missing(api_client, training_session, stranger):
    assert_api_error(create(api_client(stranger), training_session), 400, "validation_error", "training_session_id")


@pytest.mark.parametrize("session_id", ["no-such-session", ""])
def test_unknown_or_blank_training_session(owner_client, training_session, session_id):
    assert_api_error(
        create(owner_client, training_session, training_session_id=session_id),
        400,
        "validation_error",
        "training_session_id",
    )


def test_missing_training_session_id(owner_client):
    assert_api_error(owner_client.post(URL, {}, format="json"), 400, "validation_error", "training_session_id")


def test_closed_training_session(owner_client, training_session, owner):
    training_session_close(training_session=training_session, actor=owner)

    assert_api_error(create(owner_client, training_session), 400, "validation_error", "training_session_id")


@pytest.mark.parametrize(
    ("access_control", "field"),
    [
        ({"access_level": "secret"}, "access_control.access_level"),
        ({"access_level": "password", "password": "abc"}, "access_control.password"),
        ({"access_level": "password", "password": ""}, "access_control.password"),
        ({"access_level": "password", "password": "x" * 129}, "access_control.password"),
        ({"max_spectators": 0}, "access_control.max_spectators"),
        ({"max_spectators": "many"}, "access_control.max_spectators"),
        ({"auto_approve_timeout": -1}, "access_control.auto_approve_timeout"),
        ({"require_approval": "perhaps"}, "access_control.require_approval"),
        ({"allowed_users": "alice"}, "access_control.allowed_users"),
        ({"allowed_users": ["nobody"]}, "access_control.allowed_users"),
        ({"blocked_users": ["nobody"]}, "access_control.blocked_users"),
    ],
)
def test_bad_access_control_names_the_field(owner_client, training_session, access_control, field):
    response = create(owner_client, training_session, access_control=access_control)

    assert_api_error(response, 400, "validation_error", field)
    assert not Room.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"room_duration_hours": 0}, "room_duration_hours"),
        ({"room_duration_hours": 24 * 365}, "room_duration_hours"),
        ({"spectator_mode": "karaoke"}, "spectator_mode"),
        ({"name": "n" * 201}, "name"),
        ({"custom_room_code": "ABC"}, "custom_room_code"),
        ({"custom_room_code": "ABCDE0"}, "custom_room_code"),
        ({"custom_room_code": "ABCDEI"}, "custom_room_code"),
        ({"custom_room_code": "x" * 17}, "custom_room_code"),
        ({"enable_metrics_overlay": "maybe"}, "enable_metrics_overlay"),
    ],
)
def test_bad_room_fields_name_the_field(owner_client, training_session, body, field):
    assert_api_error(create(owner_client, training_session, **body), 400, "validation_error", field)
    assert not Room.objects.exists()


def test_several_bad_fields_are_all_named(owner_client, training_session):
    response = create(
        owner_client,
        training_session,
        room_duration_hours=0,
        access_control={"access_level": "password", "password": "abc", "max_spectators": 0},
    )

    assert_api_error(
        response,
        400,
        "validation_error",
        "room_duration_hours",
        "access_control.password",
        "access_control.max_spectators",
    )


def test_custom_room_code_taken_by_a_live_room(owner_client, training_session, make_room):
    make_room(custom_code="TAKEN2")

    assert_api_error(
        create(owner_client, training_session, custom_room_code="taken2"), 400, "validation_error", "custom_room_code"
    )


def test_custom_room_code_of_a_closed_room_can_be_reused(owner_client, training_session, make_room, owner):
    from rooms.services import room_close

    room_close(room=make_room(custom_code="REUSE2"), actor=owner)

    response = create(owner_client, training_session, custom_room_code="REUSE2")

    assert response.status_code == 201, response.json()
    assert response.json()["room_code"] == "REUSE2"


def test_staff_creates_room_for_any_training_session(api_client, staff, owner):
    session, _ = training_session_create(owner=owner, id="someone-elses")

    response = api_client(staff).post(URL, {"training_session_id": session.id}, format="json")

    assert response.status_code == 201, response.json()
    assert response.json()["creator_id"] == "moderator"


def test_malformed_json(owner_client):
    response = owner_client.post(URL, '{"training_session_id": ', content_type="application/json")

    assert_api_error(response, 400, "parse_error")


def test_form_encoded_body_is_accepted(owner_client, training_session):
    response = owner_client.post(URL, {"training_session_id": training_session.id}, format="multipart")

    assert response.status_code == 201, response.json()
