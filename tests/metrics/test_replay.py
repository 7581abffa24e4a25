"""The replay state machine (``metrics.replay``): every command in every state, and the bounds."""

from __future__ import annotations

import math

import pytest

from metrics.replay import (
    MAX_SPEED,
    MIN_SPEED,
    ReplayCommand,
    ReplayError,
    ReplayState,
    ReplayStatus,
    replay_apply,
    replay_command_parse,
)

STOPPED, PLAYING, PAUSED, ENDED = ReplayStatus
# Recorded step numbers need not be contiguous: 13 falls between 12 and 14.
STEPS = (10, 11, 12, 14, 20)
LAST = len(STEPS) - 1

STATES = {
    "none": ReplayState(),
    "stopped": ReplayState(episode=7, steps=STEPS, position=0, status=STOPPED),
    "playing": ReplayState(episode=7, steps=STEPS, position=2, status=PLAYING, speed=2.0),
    "paused": ReplayState(episode=7, steps=STEPS, position=2, status=PAUSED),
    "ended": ReplayState(episode=7, steps=STEPS, position=LAST, status=ENDED, loop=False),
}

COMMANDS = {
    "select": lambda s: s.select(8, (0, 1, 2)),
    "play": lambda s: s.play(),
    "pause": lambda s: s.pause(),
    "stop": lambda s: s.stop(),
    "seek": lambda s: s.seek(13),
    "step_forward": lambda s: s.step_by(1),
    "step_back": lambda s: s.step_by(-1),
    "speed": lambda s: s.with_speed(4),
    "loop": lambda s: s.with_loop(True),
    "advance": lambda s: s.advance(),
}

# (state, command) -> (status, position), or the field a ReplayError names.
EXPECTED = {
    ("none", "select"): (STOPPED, 0),
    ("none", "play"): "episode",
    ("none", "pause"): "episode",
    ("none", "stop"): (STOPPED, 0),
    ("none", "seek"): "episode",
    ("none", "step_forward"): "episode",
    ("none", "step_back"): "episode",
    ("none", "speed"): (STOPPED, 0),
    ("none", "loop"): (STOPPED, 0),
    ("none", "advance"): (STOPPED, 0),
    ("stopped", "select"): (STOPPED, 0),
    ("stopped", "play"): (PLAYING, 0),
    ("stopped", "pause"): (STOPPED, 0),
    ("stopped", "stop"): (STOPPED, 0),
    ("stopped", "seek"): (PAUSED, 2),
    ("stopped", "step_forward"): (PAUSED, 1),
    ("stopped", "step_back"): (PAUSED, 0),
    ("stopped", "speed"): (STOPPED, 0),
    ("stopped", "loop"): (STOPPED, 0),
    ("stopped", "advance"): (STOPPED, 0),
    ("playing", "select"): (STOPPED, 0),
    ("playing", "play"): (PLAYING, 2),
    ("playing", "pause"): (PAUSED, 2),
    ("playing", "stop"): (STOPPED, 0),
    ("playing", "seek"): (PLAYING, 2),
    ("playing", "step_forward"): (PAUSED, 3),
    ("playing", "step_back"): (PAUSED, 1),
    ("playing", "speed"): (PLAYING, 2),
    ("playing", "loop"): (PLAYING, 2),
    ("playing", "advance"): (PLAYING, 3),
    ("paused", "select"): (STOPPED, 0),
    ("paused", "play"): (PLAYING, 2),
    ("paused", "pause"): (PAUSED, 2),
    ("paused", "stop"): (STOPPED, 0),
    ("paused", "seek"): (PAUSED, 2),
    ("paused", "step_forward"): (PAUSED, 3),
    ("paused", "step_back"): (PAUSED, 1),
    ("paused", "speed"): (PAUSED, 2),
    ("paused", "loop"): (PAUSED, 2),
    ("paused", "advance"): (PAUSED, 2),
    ("ended", "select"): (STOPPED, 0),
    ("ended", "play"): (PLAYING, 0),
    ("ended", "pause"): (ENDED, LAST),
    ("ended", "stop"): (STOPPED, 0),
    ("ended", "seek"): (PAUSED, 2),
    ("ended", "step_forward"): (PAUSED, LAST),
    ("ended", "step_back"): (PAUSED, LAST - 1),
    ("ended", "speed"): (ENDED, LAST),
    ("ended", "loop"): (ENDED, LAST),
    ("ended", "advance"): (ENDED, LAST),
}


def test_the_table_covers_every_command_in_every_state():
    assert set(EXPECTED) == {(state, command) for state in STATES for command in COMMANDS}


@pytest.mark.parametrize(("state_name", "command"), sorted(EXPECTED))
def test_every_command_in_every_state(state_name, command):
    before = STATES[state_name]
    expected = EXPECTED[(state_name, command)]
    if isinstance(expected, str):
        with pytest.raises(ReplayError) as error:
            COMMANDS[command](before)
        assert error.value.field == expected and error.value.message
        return
    after = COMMANDS[command](before)
    assert (after.status, after.position) == expected
    # What a command does not change stays as it was.
    if command == "select":
        assert (after.episode, after.steps) == (8, (0, 1, 2))
    else:
        assert (after.episode, after.steps) == (before.episode, before.steps)
    assert after.speed == (4.0 if command == "speed" else before.speed)
    assert after.loop == (True if command == "loop" else before.loop)
    assert before == STATES[state_name], "states are immutable"


# --- Bounds --------------------------------------------------------------------------------------


@pytest.mark.parametrize("state_name", ["stopped", "playing", "paused", "ended"])
@pytest.mark.parametrize("step", [STEPS[0] - 1, STEPS[-1] + 1, -(2**40), 2**40])
def test_seek_outside_the_recorded_steps_names_the_step(state_name, step):
    with pytest.raises(ReplayError) as error:
        STATES[state_name].seek(step)
    assert error.value.field == "step"
    assert "10 to 20" in error.value.message


@pytest.mark.parametrize(("step", "position"), [(10, 0), (11, 1), (12, 2), (13, 2), (14, 3), (19, 3), (20, LAST)])
def test_seek_lands_on_the_last_recorded_step_at_or_before(step, position):
    state = STATES["paused"].seek(step)
    assert state.position == position and state.step == STEPS[position]


@pytest.mark.parametrize("bad", [True, 12.0, "12", None])
def test_seek_needs_an_integer(bad):
    with pytest.raises(ReplayError) as error:
        STATES["paused"].seek(bad)
    assert error.value.field == "step"


def test_stepping_stops_at_both_ends():
    first = STATES["stopped"]
    assert first.step_by(-1).position == 0
    assert first.step_by(-1000).position == 0
    last = first.step_by(LAST)
    assert last.position == LAST and last.step == 20
    assert last.step_by(1).position == LAST
    assert last.step_by(10**5).position == LAST
    assert last.step_by(-2).position == LAST - 2


@pytest.mark.parametrize("bad", [0, True, 1.0, "1", None, 10**5 + 1, -(10**5) - 1])
def test_step_needs_a_nonzero_bounded_integer(bad):
    with pytest.raises(ReplayError) as error:
        STATES["paused"].step_by(bad)
    assert error.value.field == "delta"


@pytest.mark.parametrize("speed", [MIN_SPEED, 0.25, 1, 3.5, MAX_SPEED])
def test_speeds_from_a_tenth_to_ten(speed):
    state = STATES["playing"].with_speed(speed)
    assert state.speed == float(speed) and state.status == PLAYING


@pytest.mark.parametrize("bad", [0, 0.0999, -1, 10.001, 100, math.nan, math.inf, -math.inf, True, "2", None])
def test_speed_outside_the_range_names_the_field(bad):
    with pytest.raises(ReplayError) as error:
        STATES["playing"].with_speed(bad)
    assert error.value.field == "speed"
    assert "0.1" in error.value.message and "10" in error.value.message


@pytest.mark.parametrize("bad", [1, 0, "true", None])
def test_loop_takes_a_boolean(bad):
    with pytest.raises(ReplayError) as error:
        STATES["paused"].with_loop(bad)
    assert error.value.field == "loop"


def test_playing_to_the_end_ends_without_loop_and_starts_over_with_it():
    state = STATES["stopped"].play()
    seen = [state.position]
    for _ in range(LAST):
        state = state.advance()
        seen.append(state.position)
    assert seen == list(range(len(STEPS))) and state.status == PLAYING and state.at_end
    ended = state.advance()
    assert (ended.status, ended.position) == (ENDED, LAST)
    assert ended.advance() == ended
    looped = state.with_loop(True).advance()
    assert (looped.status, looped.position) == (PLAYING, 0)
    assert ended.play().position == 0 and ended.play().status == PLAYING


def test_a_one_step_episode_ends_or_loops_at_once():
    state = ReplayState().select(3, (42,)).play()
    assert state.advance().status == ENDED
    assert state.with_loop(True).advance() == state.with_loop(True)


@pytest.mark.parametrize("bad", [None, "3", 3.0, True])
def test_select_needs_an_integer_episode(bad):
    with pytest.raises(ReplayError) as error:
        ReplayState().select(bad, (1, 2))
    assert error.value.field == "episode"


def test_select_of_an_episode_without_steps_is_refused():
    with pytest.raises(ReplayError) as error:
        STATES["paused"].select(9, ())
    assert error.value.field == "episode" and "9" in error.value.message


def test_select_keeps_speed_and_loop():
    state = STATES["playing"].with_loop(True).select(8, (5, 6))
    assert (state.speed, state.loop, state.status, state.position) == (2.0, True, STOPPED, 0)


def test_to_dict_describes_the_state():
    assert STATES["paused"].to_dict() == {
        "episode": 7,
        "status": "paused",
        "position": 2,
        "step": 12,
        "length": 5,
        "first_step": 10,
        "last_step": 20,
        "speed": 1.0,
        "loop": False,
    }
    assert ReplayState().to_dict()["step"] is None


# --- The protocol's messages ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "command"),
    [
        ({"action": "select", "episode": 4}, ReplayCommand("select", 4)),
        ({"action": "play"}, ReplayCommand("play")),
        ({"action": "pause"}, ReplayCommand("pause")),
        ({"action": "stop"}, ReplayCommand("stop")),
        ({"action": "seek", "step": 12}, ReplayCommand("seek", 12)),
        ({"action": "step"}, ReplayCommand("step", 1)),
        ({"action": "step", "delta": -3}, ReplayCommand("step", -3)),
        ({"action": "step_forward"}, ReplayCommand("step", 1)),
        ({"action": "step_back"}, ReplayCommand("step", -1)),
        ({"action": "step_back", "delta": 5}, ReplayCommand("step", -5)),
        ({"action": "speed", "speed": 0.5}, ReplayCommand("speed", 0.5)),
        ({"action": "loop", "loop": False}, ReplayCommand("loop", False)),
        ({"action": "loop"}, ReplayCommand("loop", True)),
        ({"action": "follow", "follow": False}, ReplayCommand("follow", False)),
        ({"action": "lead"}, ReplayCommand("lead", True)),
        ({"action": "state"}, ReplayCommand("state")),
        ({"action": "exit"}, ReplayCommand("exit")),
    ],
)
def test_messages_parse_to_commands(message, command):
    assert replay_command_parse({"type": "replay", **message}) == command


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ({}, "action"),
        ({"action": "rewind"}, "action"),
        ({"action": ["play"]}, "action"),
        ({"action": "select"}, "episode"),
        ({"action": "select", "episode": "3"}, "episode"),
        ({"action": "select", "episode": True}, "episode"),
        ({"action": "seek"}, "step"),
        ({"action": "seek", "step": 1.5}, "step"),
        ({"action": "step", "delta": "1"}, "delta"),
        ({"action": "loop", "loop": "yes"}, "loop"),
        ({"action": "follow", "follow": 1}, "follow"),
        ({"action": "lead", "lead": None}, "lead"),
    ],
)
def test_malformed_messages_name_the_field(message, field):
    with pytest.raises(ReplayError) as error:
        replay_command_parse(message)
    assert error.value.field == field


def test_apply_runs_the_machine_commands_and_refuses_the_others():
    state = STATES["stopped"]
    assert replay_apply(state, ReplayCommand("play")).status == PLAYING
    assert replay_apply(state, ReplayCommand("seek", 14)).position == 3
    assert replay_apply(state, ReplayCommand("speed", 10)).speed == 10.0
    with pytest.raises(ReplayError) as error:
        replay_apply(state, ReplayCommand("speed", 11))
    assert error.value.field == "speed"
    with pytest.raises(ReplayError):
        replay_apply(state, ReplayCommand("select", 3))
