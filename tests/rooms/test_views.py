"""The pages: what each one renders for whom (the browser tests drive the scripts on them)."""

import json

import pytest
from django.utils import timezone

from rooms.models import AccessLevel, Room

pytestmark = pytest.mark.django_db


def room_data(response) -> dict:
    """The JSON the room page hands its script (Django's json_script)."""
    after = response.content.decode().split('id="room-data" type="application/json">')[1]
    return json.loads(after.split("</script>")[0])


def test_lobby_lists_public_and_password_rooms_only(client, make_room):
    public = make_room(name="Open run")
    password = make_room(name="Locked run", access_level=AccessLevel.PASSWORD)
    invite = make_room(name="Invite run", access_level=AccessLevel.INVITE_ONLY)
    private = make_room(name="Hidden run", access_level=AccessLevel.PRIVATE)
    response = client.get("/")
    assert response.status_code == 200
    body = response.content.decode()
    assert public.code in body and password.code in body
    assert invite.code not in body and private.code not in body
    assert "csrftoken" in response.cookies


def test_join_by_code_redirects_a_wellformed_code_and_explains_a_bad_one(client):
    assert client.get("/r/", {"code": " k7qx2m "})["Location"] == "/r/K7QX2M/"
    response = client.get("/r/", {"code": "nope!"})
    assert response.status_code == 400
    assert "A room code is 6 characters" in response.content.decode()


@pytest.mark.parametrize(
    ("access", "screen", "refusal"),
    [
        ({}, "joining", None),
        ({"access_level": AccessLevel.PASSWORD}, "password", "password_required"),
        ({"require_approval": True}, "request", None),
        ({"access_level": AccessLevel.INVITE_ONLY}, "refused", "sign_in_required"),
    ],
)
def test_room_page_opens_on_the_screen_the_access_decision_gives(client, make_room, access, screen, refusal):
    room = make_room(**access)
    response = client.get(f"/r/{room.code.lower()}/")
    assert response.status_code == 200
    data = room_data(response)
    assert (data["screen"], data["refusal"], data["code"]) == (screen, refusal, room.code)
    assert data["is_manager"] is False and data["manage_url"] == ""


def test_room_page_for_the_owner_offers_management(client, make_room, owner):
    room = make_room(access_level=AccessLevel.PRIVATE)
    client.force_login(owner)
    data = room_data(client.get(f"/r/{room.code}/"))
    assert data["screen"] == "joining" and data["is_manager"] is True
    assert data["manage_url"] == f"/my/rooms/{room.code}/"


def test_private_and_missing_rooms_look_the_same(client, make_room):
    room = make_room(name="Hidden run", access_level=AccessLevel.PRIVATE)
    private, missing = client.get(f"/r/{room.code}/"), client.get("/r/ZZZZZZ/")
    assert private.status_code == missing.status_code == 404
    assert "No room with that code" in private.content.decode()
    assert "Hidden run" not in private.content.decode()


@pytest.mark.parametrize(("status", "title"), [("closed", "has been closed"), ("expired", "has expired")])
def test_ended_rooms_say_what_happened(client, make_room, status, title):
    room = make_room(name="Old run")
    if status == "closed":
        Room.objects.filter(pk=room.pk).update(status=Room.Status.CLOSED, closed_at=timezone.now())
    else:
        Room.objects.filter(pk=room.pk).update(expires_at=timezone.now() - timezone.timedelta(minutes=1))
    response = client.get(f"/r/{room.code}/")
    assert response.status_code == 410
    assert title in response.content.decode()


def test_user_text_is_escaped_in_pages(client, make_room, owner):
    room = make_room(name='<img src=x onerror="alert(1)">')
    body = client.get("/").content.decode() + client.get(f"/r/{room.code}/").content.decode()
    assert "<img src=x" not in body
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in body


def test_owner_pages_need_sign_in(client, make_room):
    room = make_room()
    for path in ("/my/", "/my/rooms/new/", f"/my/rooms/{room.code}/"):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/?next=")


def test_my_home_lists_my_rooms_and_sessions(client, make_room, owner, training_session):
    room = make_room(name="Mine")
    client.force_login(owner)
    body = client.get("/my/").content.decode()
    assert room.code in body and training_session.id in body


def test_create_room_shows_its_password_once(client, owner, training_session):
    client.force_login(owner)
    response = client.post(
        "/my/rooms/new/",
        {
            "training_session": training_session.id,
            "name": "Team run",
            "access_level": "password",
            "password": "",
            "allowed_users": "",
            "max_spectators": 5,
            "auto_approve_timeout": 0,
            "duration_hours": 2,
            "enable_metrics_overlay": "on",
            "enable_performance_graphs": "on",
        },
    )
    room = Room.objects.get(name="Team run")
    assert response.status_code == 302 and response["Location"] == f"/my/rooms/{room.code}/"
    assert (room.access_level, room.max_spectators, room.enable_decision_visualization) == ("password", 5, False)
    first = client.get(response["Location"]).content.decode()
    assert 'id="new-password"' in first
    assert 'id="new-password"' not in client.get(response["Location"]).content.decode()


def test_create_room_reports_service_errors_on_the_form(client, owner, training_session, make_user):
    client.force_login(owner)
    response = client.post(
        "/my/rooms/new/",
        {
            "training_session": training_session.id,
            "access_level": "invite_only",
            "allowed_users": "ghost",
            "max_spectators": 5,
            "auto_approve_timeout": 0,
            "duration_hours": 2,
        },
    )
    assert response.status_code == 200
    assert "Unknown user(s): ghost." in response.content.decode()
    assert not Room.objects.filter(access_level="invite_only").exists()


def test_manage_page_is_for_managers_only(client, make_room, make_user, owner):
    room = make_room()
    client.force_login(make_user("stranger"))
    refused = client.get(f"/my/rooms/{room.code}/")
    assert refused.status_code == 403 and "Only the room" in refused.content.decode()
    private = make_room(access_level=AccessLevel.PRIVATE)
    assert client.get(f"/my/rooms/{private.code}/").status_code == 404
    client.force_login(owner)
    response = client.get(f"/my/rooms/{room.code}/")
    assert response.status_code == 200 and "Close room" in response.content.decode()


def test_pages_forbid_inline_script(client, make_room):
    room = make_room()
    for path in ("/", f"/r/{room.code}/", "/accounts/login/"):
        response = client.get(path)
        assert "script-src 'self'" in response["Content-Security-Policy"]
        body = response.content.decode()
        assert "<script>" not in body and " onclick=" not in body and ' style="' not in body
