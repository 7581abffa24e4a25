"""Replay over the room WebSocket: a spectator's own player, its stream, errors, and following
the room's leader (``rooms.replay_player``)."""

from __future__ import annotations

import asyncio
import json
import secrets

import pytest
from channels.db import database_sync_to_async

from metrics.ingest import decisions_clean, frame_parse, metric_points_clean
from metrics.recording_services import recording_append
from metrics.services import metric_points_append
from rooms.access import Visitor
from rooms.services import anon_key_for, room_join
from rooms.tickets import ticket_issue
from tests.support.live import (
    close_thread_connections,
    frame_bytes,
    frame_split,
    login_cookie,
    receive_json,
    room_path,
    ws_open,
)

pytestmark = pytest.mark.django_db(transaction=True)
db = database_sync_to_async
TIMEOUT = 3
EPISODE = 3
STEPS = 10
FRAME_STEPS = (0, 3, 6, 9)
T0 = 1_700_000_000.0


@pytest.fixture(autouse=True)
async def _closes_thread_connections():
    yield
    await close_thread_connections()


def image(step: int) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + bytes([step]) * 64


def record(training_session, episode=EPISODE, steps=STEPS, spacing=0.01):
    decisions = decisions_clean(
        [
            {
                "action_probabilities": [step / 10, 1 - step / 10],
                "selected_action": step % 2,
                "episode": episode,
                "step": step,
                "timestamp": T0 + step * spacing,
            }
            for step in range(steps)
        ]
    )
    frames = [
        frame_parse(frame_bytes({"mime": "image/png", "episode": episode, "step": step}, image(step)))
        for step in FRAME_STEPS
        if step < steps
    ]
    points = metric_points_clean(
        [{"stream": "r", "seq": episode, "timestamp": T0, "episode": episode, "current_reward": 42.0}]
    )
    metric_points_append(training_session=training_session, points=points)
    # As ingest hands them over: the episode's records, then its metric point (with the reward).
    recording_append(training_session_id=training_session.pk, decisions=decisions, frames=frames, points=points)


@pytest.fixture
def recorded(training_session):
    record(training_session)
    return training_session


@pytest.fixture
def room(make_room, recorded):
    return make_room(max_spectators=5)


async def watch(room, username=None):
    """A spectator's socket (a named user or an anonymous visitor), past its snapshot."""

    def admit():
        from django.contrib.auth import get_user_model

        if username:
            visitor = Visitor(user=get_user_model().objects.create_user(username))
        else:
            visitor = Visitor(anon_key=anon_key_for(secrets.token_urlsafe(16)))
        spectator = room_join(room=room, visitor=visitor).spectator
        return ticket_issue(room_id=room.pk, spectator_id=spectator.pk)

    communicator = await ws_open(room_path(room.code, await db(admit)()))
    assert (await receive_json(communicator))["type"] == "graph_config"
    assert (await receive_json(communicator))["type"] == "snapshot"
    return communicator


async def watch_as_owner(room, user=None):
    """A manager's browser socket (the room's creator unless ``user`` says otherwise)."""
    communicator = await ws_open(room_path(room.code), cookie=await db(login_cookie)(user or room.creator))
    assert (await receive_json(communicator))["type"] == "graph_config"
    assert (await receive_json(communicator))["type"] == "snapshot"
    return communicator


async def nothing_but_lists(communicator, timeout: float) -> bool:
    """Nothing arrives within ``timeout`` but spectator lists (they come on joins, up to 0.5 s late)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (left := deadline - loop.time()) > 0:
        if await communicator.receive_nothing(left):
            return True
        output = await communicator.receive_output(1)
        if output.get("text") is None or json.loads(output["text"])["type"] != "spectator_list":
            raise AssertionError(f"unexpected: {output}")
    return True


async def next_message(communicator, timeout=TIMEOUT, *, skip=("spectator_list",)):
    """The next message: a dict for text (passing over ``skip`` types), ``("frame", header, image)`` for binary."""
    while True:
        output = await communicator.receive_output(timeout)
        assert output["type"] == "websocket.send", output
        if output.get("bytes") is not None:
            header, data = frame_split(output["bytes"])
            return ("frame", header, data)
        message = json.loads(output["text"])
        if message["type"] not in skip:
            return message


async def replay(communicator, action, **fields):
    await communicator.send_json_to({"type": "replay", "action": action, **fields})


async def next_state(communicator, timeout=TIMEOUT):
    """The next replay_state, passing over the replayed decisions and frames still on their way."""
    while True:
        message = await next_message(communicator, timeout)
        if isinstance(message, dict) and message["type"] == "replay_state":
            return message
        assert isinstance(message, tuple) or message["type"] == "bot_decision", message


async def expect_state(communicator, action, **expected):
    message = await next_message(communicator)
    assert message["type"] == "replay_state" and message["replay"] is True, message
    assert message["action"] == action, message
    for key, value in expected.items():
        assert message[key] == value, (key, message)
    return message


async def expect_decision(communicator, step):
    message = await next_message(communicator)
    assert message["type"] == "bot_decision" and message["replay"] is True, message
    assert (message["episode"], message["step"]) == (EPISODE, step), message
    assert message["action_probabilities"] == [step / 10, 1 - step / 10]
    return message


async def expect_frame(communicator, step, training_session_id="cartpole-dqn"):
    kind, header, data = await next_message(communicator)
    assert kind == "frame"
    assert header["replay"] is True and header["training_session_id"] == training_session_id, header
    assert (header["episode"], header["step"], header["mime"]) == (EPISODE, step, "image/png"), header
    assert data == image(step)


async def expect_scene(communicator, step):
    """After a jump: the decision at ``step`` and the latest frame at or before it."""
    await expect_decision(communicator, step)
    await expect_frame(communicator, max(s for s in FRAME_STEPS if s <= step))


async def expect_error(communicator, field):
    message = await next_message(communicator)
    assert message["type"] == "error" and message["code"] == "bad_request", message
    assert message["field"] == field and message["message"], message
    return message


async def close_all(*communicators):
    for communicator in communicators:
        await communicator.disconnect()


# --- One spectator's replay ----------------------------------------------------------------------


async def test_select_shows_the_first_step_to_that_spectator_only(room):
    ann, bob = await watch(room), await watch(room)
    await replay(ann, "select", episode=EPISODE)
    state = await expect_state(ann, "select", status="stopped", episode=EPISODE, step=0, position=0)
    assert (state["length"], state["first_step"], state["last_step"], state["speed"], state["loop"]) == (
        10,
        0,
        9,
        1.0,
        False,
    )
    assert state["recording"]["decisions"] == STEPS and state["recording"]["reward"] == 42.0
    assert state["metrics"]["current_reward"] == 42.0
    assert (state["following"], state["leading"], state["leader"]) == (False, False, None)
    await expect_scene(ann, 0)
    assert await nothing_but_lists(bob, 0.3)
    await close_all(ann, bob)


async def test_step_seek_and_their_bounds(room):
    ann = await watch(room)
    await replay(ann, "select", episode=EPISODE)
    await expect_state(ann, "select")
    await expect_scene(ann, 0)

    await replay(ann, "step_back")  # already at the first step
    await expect_state(ann, "step", status="paused", position=0)
    await replay(ann, "step_forward")
    await expect_state(ann, "step", status="paused", step=1)
    await expect_scene(ann, 1)
    await replay(ann, "seek", step=5)
    await expect_state(ann, "seek", status="paused", step=5)
    await expect_scene(ann, 5)
    await replay(ann, "step", delta=100)
    await expect_state(ann, "step", step=9)
    await expect_scene(ann, 9)
    await replay(ann, "step_forward")  # already at the last step
    await expect_state(ann, "step", step=9)
    await replay(ann, "step_back", delta=2)
    await expect_state(ann, "step", step=7)
    await expect_scene(ann, 7)
    await replay(ann, "stop")
    await expect_state(ann, "stop", status="stopped", step=0)
    await expect_scene(ann, 0)
    assert await nothing_but_lists(ann, 0.2)
    await close_all(ann)


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ({"action": "rewind"}, "action"),
        ({"action": "select", "episode": 77}, "episode"),
        ({"action": "select", "episode": "3"}, "episode"),
        ({"action": "play"}, "episode"),
        ({"action": "seek", "step": 2}, "episode"),
        ({"action": "speed", "speed": 11}, "speed"),
        ({"action": "speed", "speed": 0.05}, "speed"),
        ({"action": "loop", "loop": "on"}, "loop"),
        ({"action": "lead"}, "lead"),
    ],
)
async def test_bad_commands_get_an_error_naming_the_field(room, message, field):
    ann = await watch(room)
    await ann.send_json_to({"type": "replay", **message})
    await expect_error(ann, field)
    await ann.send_json_to({"type": "ping", "t": 1})
    assert (await next_message(ann))["type"] == "pong"
    await close_all(ann)


async def test_out_of_range_seek_and_speed_once_an_episode_is_selected(room):
    ann = await watch(room)
    await replay(ann, "select", episode=EPISODE)
    await expect_state(ann, "select")
    await expect_scene(ann, 0)
    await replay(ann, "seek", step=10)
    error = await expect_error(ann, "step")
    assert "0 to 9" in error["message"]
    await replay(ann, "speed", speed=True)
    await expect_error(ann, "speed")
    await replay(ann, "state")
    await expect_state(ann, "state", status="stopped", step=0)
    await close_all(ann)


async def test_play_streams_every_step_in_order_then_ends(room):
    ann = await watch(room)
    await replay(ann, "select", episode=EPISODE)
    await expect_state(ann, "select")
    await expect_scene(ann, 0)
    await replay(ann, "speed", speed=10)
    await expect_state(ann, "speed", speed=10.0)
    await replay(ann, "play")
    await expect_state(ann, "play", status="playing", step=0)
    for step in range(1, STEPS):
        await expect_decision(ann, step)
        if step in FRAME_STEPS:
            await expect_frame(ann, step)
    await expect_state(ann, "ended", status="ended", step=9)
    # play again starts over
    await replay(ann, "play")
    await expect_state(ann, "play", status="playing", step=0)
    await expect_scene(ann, 0)
    await replay(ann, "pause")
    await close_all(ann)


async def test_loop_starts_over_at_the_end(room):
    ann = await watch(room)
    await replay(ann, "select", episode=EPISODE)
    await expect_state(ann, "select")
    await expect_scene(ann, 0)
    await replay(ann, "loop", loop=True)
    await expect_state(ann, "loop", loop=True)
    await replay(ann, "seek", step=8)
    await expect_state(ann, "seek")
    await expect_scene(ann, 8)
    await replay(ann, "play")
    await expect_state(ann, "play", status="playing", step=8)
    await expect_decision(ann, 9)
    await expect_frame(ann, 9)
    await expect_state(ann, "loop", status="playing", step=0)
    await expect_scene(ann, 0)
    await replay(ann, "pause")
    assert (await next_state(ann))["status"] == "paused"
    await close_all(ann)


async def test_pause_holds_and_play_goes_on_from_there(room, training_session):
    ann = await watch(room)
    await replay(ann, "select", episode=EPISODE)
    await expect_state(ann, "select")
    await expect_scene(ann, 0)
    await replay(ann, "speed", speed=0.1)  # 0.1 s a step
    await expect_state(ann, "speed")
    await replay(ann, "play")
    await expect_state(ann, "play", status="playing")
    await expect_decision(ann, 1)
    await replay(ann, "pause")
    paused = await expect_state(ann, "pause", status="paused")
    held = paused["step"]
    assert held >= 1
    assert await nothing_but_lists(ann, 0.4)  # four steps' worth of time: nothing moves
    await replay(ann, "speed", speed=10)
    await expect_state(ann, "speed", status="paused", step=held)
    await replay(ann, "play")
    await expect_state(ann, "play", status="playing", step=held)
    await expect_decision(ann, held + 1)
    await close_all(ann)


async def test_the_live_stream_goes_on_for_everyone(room, training_session):
    ann, bob = await watch(room), await watch(room)
    await replay(ann, "select", episode=EPISODE)
    await expect_state(ann, "select")
    await expect_scene(ann, 0)
    point = {"stream": "live", "seq": 1, "timestamp": T0 + 99, "episode": 99, "current_reward": 1.5}
    await db(metric_points_append)(training_session=training_session, points=metric_points_clean([point]))
    for communicator in (ann, bob):
        message = await next_message(communicator)
        assert message["type"] == "training_metrics" and "replay" not in message
        assert message["data"]["episode"] == 99
        assert (await next_message(communicator))["type"] == "graph_update"
    assert await nothing_but_lists(bob, 0.2)
    await close_all(ann, bob)


async def test_exit_goes_back_to_live(room):
    ann = await watch(room)
    await replay(ann, "select", episode=EPISODE)
    await expect_state(ann, "select")
    await expect_scene(ann, 0)
    await replay(ann, "exit")
    await expect_state(ann, "exit", episode=None, status="stopped", step=None, recording=None)
    await replay(ann, "play")
    await expect_error(ann, "episode")
    await close_all(ann)


async def test_a_room_without_decisions_replays_frames_only(make_room, recorded):
    room = await db(make_room)(enable_decision_visualization=False)
    ann = await watch(room)
    await replay(ann, "select", episode=EPISODE)
    await expect_state(ann, "select")
    await expect_frame(ann, 0)
    await replay(ann, "seek", step=4)
    await expect_state(ann, "seek")
    await expect_frame(ann, 3)
    await close_all(ann)


# --- Following the leader -----------------------------------------------------------------------


async def test_spectators_follow_the_owners_playback_until_they_leave_it(room):
    owner = await watch_as_owner(room)
    ann, bob = await watch(room, "ann"), await watch(room)
    await replay(owner, "lead")
    await expect_state(owner, "lead", leading=True)
    # A spectator who does not follow only hears that there is a leader.
    await replay(bob, "state")
    leader = {"spectator_id": await db(owner_id)(room), "display_name": "owner"}
    await expect_state(bob, "state", leader=leader)

    await replay(ann, "follow")
    await expect_state(ann, "follow", following=True)
    await replay(owner, "select", episode=EPISODE)
    await expect_state(owner, "select")
    await expect_scene(owner, 0)
    followed = await expect_state(ann, "leader", episode=EPISODE, status="stopped", step=0, following=True)
    assert followed["leader"]["display_name"] == "owner"
    await expect_scene(ann, 0)

    await replay(owner, "seek", step=6)
    await expect_state(owner, "seek")
    await expect_scene(owner, 6)
    await expect_state(ann, "leader", status="paused", step=6)
    await expect_scene(ann, 6)

    await replay(owner, "speed", speed=0.5)
    await expect_state(owner, "speed")
    await expect_state(ann, "leader", speed=0.5, step=6)

    await replay(ann, "follow", follow=False)
    await expect_state(ann, "follow", following=False, step=6)
    await replay(owner, "step_forward")
    await expect_state(owner, "step", step=7)
    await expect_scene(owner, 7)
    assert await nothing_but_lists(ann, 0.3)
    assert await nothing_but_lists(bob, 0.1)
    await close_all(owner, ann, bob)


async def test_followers_play_along_and_hear_when_the_leader_goes(room):
    owner = await watch_as_owner(room)
    ann = await watch(room)
    await replay(owner, "select", episode=EPISODE)
    await expect_state(owner, "select")
    await expect_scene(owner, 0)
    await replay(owner, "speed", speed=0.1)
    await expect_state(owner, "speed")
    await replay(owner, "lead")
    await expect_state(owner, "lead", leading=True)
    # Following starts from where the leader is.
    await replay(ann, "follow")
    await expect_state(ann, "follow", following=True, episode=EPISODE, step=0, speed=0.1)
    await expect_scene(ann, 0)
    await replay(owner, "play")
    await expect_state(owner, "play", status="playing")
    await expect_state(ann, "leader", status="playing", step=0)
    await expect_decision(ann, 1)  # the follower's own player plays the same recording
    await owner.disconnect()
    gone = await next_state(ann)
    assert gone["action"] == "leader_gone" and gone["status"] == "paused" and gone["leader"] is None
    await close_all(ann)


async def test_taking_the_controls_leaves_following_and_a_second_leader_takes_over(room, make_user):
    owner = await watch_as_owner(room)
    ann = await watch(room)
    await replay(owner, "lead")
    await expect_state(owner, "lead", leading=True)
    await replay(ann, "follow")
    await expect_state(ann, "follow", following=True)
    await replay(ann, "select", episode=EPISODE)
    await expect_state(ann, "select", following=False)
    await expect_scene(ann, 0)
    await replay(owner, "follow")
    await expect_error(owner, "follow")
    # Staff manage every room: leading takes the lead from the owner.
    staff = await watch_as_owner(room, await db(make_user)("boss", staff=True))
    await replay(staff, "lead")
    await expect_state(staff, "lead", leading=True)
    taken = await expect_state(owner, "lead_taken", leading=False)
    assert taken["leader"]["display_name"] == "boss"
    await close_all(owner, ann, staff)


def owner_id(room):
    """The owner's spectator id in ``room`` (managers hold a seat row too)."""
    from rooms.models import Spectator

    return Spectator.objects.get(room=room, user=room.creator, left_at__isnull=True).pk
