"""Pages for the moderation states: refusal screens (locked, timed out, bad invite links), the
one-click invite link, the waiting screen's owner message, the lobby without unlisted rooms, and
the owner page's moderation section (escaped user text, no inline scripts)."""

import pytest

from rooms import invite_links, moderation, services
from rooms.models import AccessLevel
from tests.rooms.test_views import room_data

pytestmark = pytest.mark.django_db


def refused_text(response) -> str:
    return response.content.decode().split('id="refused-detail">')[1].split("</p>")[0]


def test_locked_room_page_explains_the_lock(client, make_room, owner):
    room = make_room()
    moderation.room_lock(room=room, actor=owner, locked=True)
    response = client.get(f"/r/{room.code}/")
    data = room_data(response)
    assert (data["screen"], data["refusal"]) == ("refused", "room_locked")
    assert "locked" in refused_text(response)


def test_timed_out_room_page_explains_the_timeout(client, make_room, make_user, owner):
    room = make_room()
    user = make_user("noisy")
    moderation.timeout_create(room=room, actor=owner, user=user, duration_seconds=60)
    client.force_login(user)
    response = client.get(f"/r/{room.code}/")
    data = room_data(response)
    assert (data["screen"], data["refusal"]) == ("refused", "timed_out")
    assert "timed out" in refused_text(response)


@pytest.mark.parametrize("kind", ["revoked", "forged", "someone_else"])
def test_bad_invite_link_pages_explain_the_link(client, make_room, make_user, owner, kind):
    room = make_room(access_level=AccessLevel.PASSWORD)
    make_user("alice")
    link, token = invite_links.invite_link_create(
        room=room, actor=owner, grants_password=True, username="alice" if kind == "someone_else" else None
    )
    if kind == "revoked":
        invite_links.invite_link_revoke(link=link, actor=owner)
    if kind == "forged":
        token = token[:-3] + "abc"
    client.force_login(make_user("bob"))
    response = client.get(f"/r/{room.code}/", {"invite": token})
    data = room_data(response)
    want = "invite_link_not_yours" if kind == "someone_else" else "invite_link_invalid"
    assert (data["screen"], data["refusal"]) == ("refused", want)
    assert "invite link" in refused_text(response)
    assert data["invite_token"] == token  # handed on, so joining gives the same answer


def test_invite_link_with_the_password_opens_on_joining(client, make_room, owner):
    room = make_room(access_level=AccessLevel.PASSWORD)
    _link, token = invite_links.invite_link_create(room=room, actor=owner, grants_password=True)
    data = room_data(client.get(f"/r/{room.code}/", {"invite": token}))
    assert (data["screen"], data["refusal"], data["invite_token"]) == ("joining", None, token)
    # Without the link, the same page asks for the password and carries no token.
    data = room_data(client.get(f"/r/{room.code}/"))
    assert (data["screen"], data["invite_token"]) == ("password", "")


def test_waiting_screen_shows_the_owners_message_escaped(client, make_room, owner):
    room = make_room(require_approval=True)
    services.room_access_update(room=room, actor=owner, waiting_message="<b>Back soon</b>")
    response = client.get(f"/r/{room.code}/")
    body = response.content.decode()
    assert 'id="waiting-message">&lt;b&gt;Back soon&lt;/b&gt;</p>' in body
    assert "<b>Back soon</b>" not in body.split('id="room-data"')[0]


def test_lobby_leaves_out_unlisted_rooms(client, make_room, owner):
    listed, unlisted = make_room(name="Listed run"), make_room(name="Unlisted run")
    services.room_access_update(room=unlisted, actor=owner, listed=False)
    body = client.get("/").content.decode()
    assert listed.code in body and unlisted.code not in body
    assert client.get(f"/r/{unlisted.code}/").status_code == 200


def test_owner_page_has_the_moderation_section(client, make_room, owner):
    room = make_room(access_level=AccessLevel.PASSWORD, require_approval=True)
    services.room_access_update(room=room, actor=owner, waiting_message='</textarea><script>alert("x")</script>')
    client.force_login(owner)
    response = client.get(f"/my/rooms/{room.code}/")
    assert response.status_code == 200
    body = response.content.decode()
    for element in (
        'id="admit-all"',
        'id="toggle-approval" checked',
        'id="toggle-lock"',
        'id="toggle-listed" checked',
        'id="moderator-form"',
        'id="link-form"',
        'id="link-password"',
        'id="timeout-list"',
        'id="audit-rows"',
        f'href="/api/v1/rooms/{room.code}/audit.csv"',
        "spectator/moderation.js",
    ):
        assert element in body, element
    assert '<script>alert("x")</script>' not in body
    assert "&lt;/textarea&gt;&lt;script&gt;" in body
    assert "<script>" not in body.replace('<script type="module"', "").replace('<script id="manage-data"', "")


def test_owner_page_of_a_private_room_offers_no_invite_links(client, make_room, owner):
    room = make_room(access_level=AccessLevel.PRIVATE)
    client.force_login(owner)
    body = client.get(f"/my/rooms/{room.code}/").content.decode()
    assert 'id="link-form"' not in body and 'id="toggle-listed"' not in body and 'id="admit-all"' in body


def test_owner_page_of_a_closed_room_keeps_the_audit_trail_only(client, make_room, owner):
    room = make_room()
    moderation.room_lock(room=room, actor=owner, locked=True)
    services.room_close(room=room, actor=owner)
    client.force_login(owner)
    body = client.get(f"/my/rooms/{room.code}/").content.decode()
    assert 'id="audit-rows"' in body and 'id="admit-all"' not in body


def test_room_moderators_reach_the_owner_page(client, make_room, make_user, owner):
    room = make_room()
    helper = make_user("helper")
    moderation.moderator_add(room=room, username="helper", actor=owner)
    client.force_login(helper)
    assert client.get(f"/my/rooms/{room.code}/").status_code == 200
    data = room_data(client.get(f"/r/{room.code}/"))
    assert data["is_manager"] is True and data["screen"] == "joining"
