"""Who may do what over the sockets: the room socket's connect and every action x role, and
the ingest socket by token (the HTTP side is ``test_authorization_matrix.py``).

Every message type the room consumer handles needs a row in ``ACTIONS``; a row for a type
not implemented yet (replay controls) is skipped with that reason.
"""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from rooms import services
from rooms.access import Visitor
from rooms.consumers import RoomConsumer
from rooms.models import JoinRequest, Spectator
from rooms.tickets import ticket_issue
from tests.security.conftest import ROLES
from tests.support.live import (
    close_thread_connections,
    expect_refused,
    login_cookie,
    receive_json,
    room_path,
    ws_open,
)

pytestmark = pytest.mark.django_db(transaction=True)
db = database_sync_to_async

MANAGERS = ("owner", "moderator")
CONNECTED = ("owner", "moderator", "spectator")


@pytest.fixture(autouse=True)
async def _closes_thread_connections():
    yield
    await close_thread_connections()


async def connect_as(cast, role: str, room):
    """The role's browser: its session cookie (none for anonymous), no ticket."""
    cookie = None if role == "anonymous" else await db(login_cookie)(cast.users[role])
    return await ws_open(room_path(room.code), cookie=cookie)


async def until(communicator, wanted: str, **fields) -> tuple[dict, list[dict]]:
    """Read up to the first message of type ``wanted`` (with ``fields``); return it and what came before."""
    before = []
    while True:
        message = await receive_json(communicator)
        if message["type"] == wanted and all(message.get(key) == value for key, value in fields.items()):
            return message, before
        before.append(message)


# --- Connecting -------------------------------------------------------------------------------

# What connecting by browser session gets: admitted (the viewer's is_manager), or the refusal.
CONNECT = {
    "owner": True,
    "moderator": True,
    "spectator": False,
    "pending": ("ticket_required", 4401),
    "banned": ("ticket_required", 4401),
    "stranger": ("ticket_required", 4401),
    "anonymous": ("ticket_required", 4401),
}


@pytest.mark.parametrize("role", ROLES)
async def test_connect_to_the_gated_room(cast, role):
    communicator = await connect_as(cast, role, cast.gated)
    expected = CONNECT[role]
    if isinstance(expected, tuple):
        await expect_refused(communicator, *expected)
        return
    snapshot, before = await until(communicator, "snapshot")
    assert [message["type"] for message in before] == ["graph_config"]
    assert snapshot["viewer"]["is_manager"] is expected
    assert ("pending_requests" in snapshot) is expected
    await communicator.disconnect()


@pytest.mark.parametrize("role", ["pending", "banned", "stranger", "anonymous"])
async def test_private_room_looks_missing_on_the_socket(cast, role):
    communicator = await connect_as(cast, role, cast.private)
    await expect_refused(communicator, "room_not_found", 4404)
    # A made-up ticket tells nothing more.
    communicator = await ws_open(room_path(cast.private.code, "made-up"))
    await expect_refused(communicator, "room_not_found", 4404)


async def test_a_ticket_from_before_a_ban_or_kick_is_refused(cast, make_user, make_room):
    owner, room = cast.users["owner"], await db(make_room)()
    for action, refusal in (("ban", "banned"), ("kick", "join_denied")):
        user = await db(make_user)(f"soon-{action}")
        seat = (await db(services.room_join)(room=room, visitor=Visitor(user=user))).spectator
        ticket = ticket_issue(room_id=room.pk, spectator_id=seat.pk)
        if action == "ban":
            await db(services.ban_create)(room=room, actor=owner, spectator=seat)
        else:
            await db(services.spectator_kick)(spectator=seat, actor=owner)
        communicator = await ws_open(room_path(room.code, ticket))
        await expect_refused(communicator, refusal, 4403)


# --- Actions on a connected socket ------------------------------------------------------------


async def moderation_target(cast, action: str) -> dict:
    if action == "admit_all":
        return {}
    if action in ("approve", "deny"):
        return {"request_id": cast.join_request.pk}
    return {"spectator_id": cast.seats["gated"].pk}


LEFT_REASONS = {"kick": "kicked", "ban": "banned", "timeout": "suspended", "send_to_waiting": "waiting"}


async def moderation_done(cast, action: str) -> bool:
    if action in ("approve", "deny", "admit_all"):
        status = (await db(JoinRequest.objects.get)(pk=cast.join_request.pk)).status
        return status == ("denied" if action == "deny" else "approved")
    seat = await db(Spectator.objects.get)(pk=cast.seats["gated"].pk)
    return seat.left_reason == LEFT_REASONS[action]


# type -> (message, reply type for everyone allowed, managers only?)
ACTIONS = {
    "ping": ({"type": "ping", "t": 1}, "pong", False),
    "set_speed": ({"type": "set_speed", "max_hz": 2}, "speed", False),
    "approve": ({"type": "approve"}, None, True),
    "deny": ({"type": "deny"}, None, True),
    "kick": ({"type": "kick"}, None, True),
    "ban": ({"type": "ban", "reason": "spam"}, None, True),
    "admit_all": ({"type": "admit_all"}, None, True),
    "send_to_waiting": ({"type": "send_to_waiting"}, None, True),
    "timeout": ({"type": "timeout", "duration_seconds": 60, "reason": "caps"}, None, True),
    "replay": ({"type": "replay", "action": "state"}, None, False),
}


def test_every_socket_action_has_a_row():
    missing = sorted(set(RoomConsumer.HANDLERS) - ACTIONS.keys())
    assert not missing, f"room socket message types without an authorization row: {missing}"


@pytest.mark.parametrize("role", CONNECTED)
@pytest.mark.parametrize("action", sorted(ACTIONS))
async def test_action_by_role(cast, action, role):
    if action not in RoomConsumer.HANDLERS:
        pytest.skip(f"the room socket does not handle {action!r} messages yet")
    message, reply, managers_only = ACTIONS[action]
    communicator = await connect_as(cast, role, cast.gated)
    await until(communicator, "snapshot")
    if managers_only:
        message = {**message, **await moderation_target(cast, action)}
    await communicator.send_json_to(message)
    # A ping after the action: everything the action caused arrives before its pong.
    await communicator.send_json_to({"type": "ping", "t": "after"})
    _pong, answers = await until(communicator, "pong", t="after")
    errors = [answer for answer in answers if answer["type"] == "error"]

    if managers_only and role not in MANAGERS:
        assert [error["code"] for error in errors] == ["forbidden"], answers
        assert not await moderation_done(cast, action)
    elif managers_only:
        assert errors == [], answers
        assert await moderation_done(cast, action)
    elif reply is not None:
        assert errors == [], answers
        assert reply in [answer["type"] for answer in answers], answers
    else:
        # Replay controls: any role may drive its own replay; an error must not be a refusal.
        assert all(error["code"] != "forbidden" for error in errors), answers
    await communicator.disconnect()


# --- The ingest socket ----------------------------------------------------------------------

INGEST = {
    "owner": None,
    "moderator": None,
    "spectator": ("training_session_not_found", 4404),
    "stranger": ("training_session_not_found", 4404),
    "invalid": ("sign_in_required", 4401),
    "none": ("sign_in_required", 4401),
}


@pytest.mark.parametrize("who", sorted(INGEST))
async def test_ingest_socket_by_token(cast, who):
    token = {"invalid": "spt_not-a-real-token", "none": None}.get(who, cast.token(who))
    communicator = await ws_open(f"/ws/ingest/{cast.training_session.pk}/", token=token)
    expected = INGEST[who]
    if expected is not None:
        await expect_refused(communicator, *expected)
        return
    await communicator.send_json_to({"type": "ping", "ref": 1})
    assert await receive_json(communicator) == {"type": "pong", "ref": 1}
    await communicator.disconnect()


async def test_ingest_socket_refusal_does_not_tell_a_session_exists(cast):
    answers = []
    for session_id in (cast.training_session.pk, "no-such-session"):
        communicator = await ws_open(f"/ws/ingest/{session_id}/", token=cast.token("stranger"))
        answers.append(await expect_refused(communicator, "training_session_not_found", 4404))
    assert answers[0] == answers[1]
