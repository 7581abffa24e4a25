"""Validation of what trainers send (``metrics/ingest.py``): every error names its field."""

from __future__ import annotations

import json
import math
import struct

import pytest

from metrics import ingest
from metrics.ingest import (
    IngestError,
    decision_clean,
    decisions_clean,
    frame_pack,
    frame_parse,
    metric_point_clean,
    metric_points_clean,
)
from tests.support.live import PNG, frame_bytes, point


def field_of(call) -> str:
    with pytest.raises(IngestError) as raised:
        call()
    assert raised.value.message
    assert str(raised.value).startswith(f"{raised.value.field}: ")
    return raised.value.field


# --- Metric points ---------------------------------------------------------------------------


def test_full_point_is_cleaned_to_columns():
    data = point(
        7,
        total_episodes=100,
        average_reward=1.5,
        best_reward=3,
        episode_length=200.0,
        win_rate=1,
        loss_value=-0.5,
        learning_rate=1e-4,
        epsilon=0.1,
        model_generation=2,
        algorithm="PPO",
        training_time_elapsed=12.5,
        actions_per_second=30,
        frames_per_second=60.0,
        memory_usage_mb=512,
        extra={"entropy": 0.2, "kl/div": -1},
        action_probabilities={"left": 0.3, "right": 0.7},
        state_values=0.5,
        q_values=[1, 2],
        selected_action="right",
    )
    cleaned = metric_point_clean(data)
    assert cleaned["stream"] == "t" and cleaned["seq"] == 7 and cleaned["episode"] == 7
    assert cleaned["best_reward"] == 3.0 and isinstance(cleaned["best_reward"], float)
    assert cleaned["episode_length"] == 200 and isinstance(cleaned["episode_length"], int)
    assert cleaned["win_rate"] == 1.0 and cleaned["loss_value"] == -0.5
    assert cleaned["extra"] == {"entropy": 0.2, "kl/div": -1.0}
    assert cleaned["decision"] == {
        "action_probabilities": {"left": 0.3, "right": 0.7},
        "state_values": 0.5,
        "q_values": [1.0, 2.0],
        "selected_action": "right",
    }
    assert json.loads(json.dumps(cleaned)) == cleaned


def test_minimal_point_defaults():
    cleaned = metric_point_clean({"seq": 0, "timestamp": 0, "episode": 0}, default_stream="main")
    assert cleaned["stream"] == "main"
    assert cleaned["algorithm"] == "" and cleaned["extra"] == {} and cleaned["decision"] is None
    assert cleaned["current_reward"] is None and cleaned["win_rate"] is None


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("name", ["current_reward", "loss_value", "timestamp"])
def test_non_finite_numbers_are_refused(name, value):
    assert field_of(lambda: metric_point_clean({**point(1), name: value})) == f"point.{name}"


@pytest.mark.parametrize("value", ["1.0", True, [1], {"a": 1}])
def test_numbers_must_be_numbers(value):
    assert field_of(lambda: metric_point_clean({**point(1), "current_reward": value})) == "point.current_reward"


@pytest.mark.parametrize("value", [-0.01, 1.01, 100])
def test_win_rate_between_0_and_1(value):
    assert field_of(lambda: metric_point_clean({**point(1), "win_rate": value})) == "point.win_rate"


@pytest.mark.parametrize("value", [0, 0.0, 1, 0.5])
def test_win_rate_bounds_are_inclusive(value):
    assert metric_point_clean({**point(1), "win_rate": value})["win_rate"] == float(value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("episode", -1),
        ("seq", -1),
        ("episode", 1.5),
        ("episode", "3"),
        ("episode", True),
        ("episode_length", -3),
        ("total_episodes", 2**63),
        ("learning_rate", -1e-3),
        ("memory_usage_mb", -1),
        ("actions_per_second", -0.1),
        ("timestamp", -1),
    ],
)
def test_out_of_range_values(name, value):
    assert field_of(lambda: metric_point_clean({**point(1), name: value})) == f"point.{name}"


@pytest.mark.parametrize("name", ["seq", "timestamp", "episode"])
def test_required_fields(name):
    data = point(1)
    del data[name]
    assert field_of(lambda: metric_point_clean(data)) == f"point.{name}"


def test_negative_reward_and_loss_are_fine():
    cleaned = metric_point_clean({**point(1), "current_reward": -5, "loss_value": -0.1, "best_reward": -1})
    assert (cleaned["current_reward"], cleaned["loss_value"]) == (-5.0, -0.1)


def test_unknown_field_is_named():
    assert field_of(lambda: metric_point_clean({**point(1), "zzz": 1, "aaa": 2})) == "point.aaa"


def test_point_must_be_an_object():
    assert field_of(lambda: metric_point_clean([1, 2])) == "point"
    assert field_of(lambda: metric_points_clean([point(1), "x"])) == "points.1"


@pytest.mark.parametrize("stream", ["", "has space", "x" * 65, "ünï", 5, "trailing\n"])
def test_stream_names(stream):
    assert field_of(lambda: metric_point_clean({**point(1), "stream": stream})) == "point.stream"


def test_stream_from_the_batch_default_and_point_wins():
    cleaned = metric_points_clean([{**point(1), "stream": None}, {**point(2), "stream": "own"}], default_stream="b")
    assert [p["stream"] for p in cleaned] == ["b", "own"]


def test_strings_too_long():
    assert field_of(lambda: metric_point_clean({**point(1), "algorithm": "x" * 101})) == "point.algorithm"
    assert metric_point_clean({**point(1), "algorithm": "x" * 100})["algorithm"] == "x" * 100
    assert field_of(lambda: metric_point_clean({**point(1), "algorithm": 5})) == "point.algorithm"
    assert (
        field_of(lambda: metric_point_clean({**point(1), "action_probabilities": [1.0], "selected_action": "a" * 65}))
        == "point.selected_action"
    )


def test_points_batch_limits():
    assert field_of(lambda: metric_points_clean({"a": 1})) == "points"
    assert len(metric_points_clean([point(i) for i in range(ingest.MAX_POINTS_PER_BATCH)])) == 1000
    assert field_of(lambda: metric_points_clean([point(i) for i in range(ingest.MAX_POINTS_PER_BATCH + 1)])) == "points"


def test_errors_name_the_index_in_the_batch():
    points = [point(0), point(1), {**point(2), "win_rate": 2}]
    assert field_of(lambda: metric_points_clean(points)) == "points.2.win_rate"


# --- Custom scalars (extra) ------------------------------------------------------------------


def test_too_many_extra_keys():
    extra = {f"k{i}": float(i) for i in range(ingest.MAX_EXTRA_KEYS + 1)}
    assert field_of(lambda: metric_point_clean({**point(1), "extra": extra})) == "point.extra"
    extra.popitem()
    assert len(metric_point_clean({**point(1), "extra": extra})["extra"]) == ingest.MAX_EXTRA_KEYS


@pytest.mark.parametrize("key", ["", "x" * 65, "semi;colon", "new\nline", "trailing\n", "ünï", "a<b>"])
def test_bad_extra_key_names(key):
    assert field_of(lambda: metric_point_clean({**point(1), "extra": {key: 1.0}})) == "point.extra"


@pytest.mark.parametrize("key", ["loss/value", "a.b:c-d e_f", "x" * 64])
def test_good_extra_key_names(key):
    assert metric_point_clean({**point(1), "extra": {key: 1}})["extra"] == {key: 1.0}


@pytest.mark.parametrize("value", [None, "1", math.nan, math.inf, True, [1.0]])
def test_extra_values_are_finite_numbers(value):
    assert field_of(lambda: metric_point_clean({**point(1), "extra": {"k": value}})) == "point.extra.k"


def test_extra_must_be_an_object():
    assert field_of(lambda: metric_point_clean({**point(1), "extra": [1, 2]})) == "point.extra"


# --- Decisions -------------------------------------------------------------------------------


def test_decision_fields_absent_is_none():
    assert decision_clean({"episode": 1}) is None


@pytest.mark.parametrize(
    "probabilities",
    [{"a": 0.5, "b": 0.5}, [0.2, 0.3, 0.5], [1.0], [0.333, 0.333, 0.333], [0.5, 0.505]],
)
def test_probabilities_summing_to_about_one(probabilities):
    assert decision_clean({"action_probabilities": probabilities})["action_probabilities"] == probabilities


@pytest.mark.parametrize(
    ("probabilities", "field"),
    [
        ([0.5, 0.6], "action_probabilities"),
        ([0.1, 0.1], "action_probabilities"),
        ([-0.5, 1.5], "action_probabilities.0"),
        ({"a": 1.2, "b": -0.2}, "action_probabilities.b"),
        ([0.5, math.nan], "action_probabilities.1"),
        ({"a": "0.5"}, "action_probabilities.a"),
        ({"bad key!": 1.0}, "action_probabilities"),
        ("0.5", "action_probabilities"),
        (0.5, "action_probabilities"),
    ],
)
def test_bad_probabilities(probabilities, field):
    assert field_of(lambda: decision_clean({"action_probabilities": probabilities})) == field


def test_empty_probabilities_are_allowed():
    assert decision_clean({"action_probabilities": []})["action_probabilities"] == []


def test_too_many_actions():
    many = [1 / 257] * 257
    assert field_of(lambda: decision_clean({"action_probabilities": many})) == "action_probabilities"
    assert field_of(lambda: decision_clean({"q_values": {f"a{i}": 0 for i in range(257)}})) == "q_values"


def test_values_may_be_negative_and_state_values_a_number_or_a_map():
    cleaned = decision_clean({"q_values": [-1, 2.5], "state_values": -3})
    assert cleaned == {
        "action_probabilities": None,
        "state_values": -3.0,
        "q_values": [-1.0, 2.5],
        "selected_action": None,
    }
    assert decision_clean({"q_values": [1], "state_values": {"v": 1}})["state_values"] == {"v": 1.0}
    assert field_of(lambda: decision_clean({"q_values": [1], "state_values": "high"})) == "state_values"
    assert field_of(lambda: decision_clean({"q_values": [math.inf]})) == "q_values.0"


@pytest.mark.parametrize("action", [1.5, True, [1], {"a": 1}])
def test_selected_action_is_a_name_or_index(action):
    assert field_of(lambda: decision_clean({"q_values": [1], "selected_action": action})) == "selected_action"


def test_decision_field_prefix():
    assert field_of(lambda: decision_clean({"q_values": "x"}, "decisions.4")) == "decisions.4.q_values"


def test_decisions_batch():
    cleaned = decisions_clean([{"action_probabilities": [1.0], "episode": 3, "step": 9, "timestamp": 1.5}])
    assert cleaned[0]["episode"] == 3 and cleaned[0]["step"] == 9 and cleaned[0]["timestamp"] == 1.5
    assert field_of(lambda: decisions_clean("x")) == "decisions"
    assert field_of(lambda: decisions_clean([1])) == "decisions.0"
    assert field_of(lambda: decisions_clean([{}])) == "decisions.0.action_probabilities"
    assert field_of(lambda: decisions_clean([{"selected_action": 1}])) == "decisions.0.action_probabilities"
    assert field_of(lambda: decisions_clean([{"q_values": [1], "step": -1}])) == "decisions.0.step"
    too_many = [{"q_values": [1]}] * (ingest.MAX_DECISIONS_PER_BATCH + 1)
    assert field_of(lambda: decisions_clean(too_many)) == "decisions"


# --- Frames ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mime", "image"),
    [("image/png", PNG), ("image/jpeg", b"\xff\xd8\xff\xe0rest"), ("image/webp", b"RIFF\x00\x00\x00\x00WEBPVP8 ")],
)
def test_frame_parse_and_pack_round_trip(mime, image):
    header, parsed_image = frame_parse(frame_bytes({"type": "frame", "mime": mime, "episode": 2, "step": 3}, image))
    assert header == {"type": "frame", "mime": mime, "episode": 2, "step": 3, "timestamp": None}
    assert parsed_image == image
    packed = frame_pack({**header, "training_session_id": "run"}, image)
    (length,) = struct.unpack(">I", packed[:4])
    assert json.loads(packed[4 : 4 + length])["training_session_id"] == "run"
    assert packed[4 + length :] == image
    assert frame_parse(packed)[1] == image


def test_frame_header_type_defaults_to_frame():
    assert frame_parse(frame_bytes({"mime": "image/png"}, PNG))[0]["type"] == "frame"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (b"", "frame"),
        (b"\x00\x00\x00", "frame"),
        (struct.pack(">I", 0), "frame.header"),
        (struct.pack(">I", ingest.MAX_FRAME_HEADER + 1) + b"{}" * 3000, "frame.header"),
        (struct.pack(">I", 50) + b"{}", "frame.header"),
        (struct.pack(">I", 3) + b"{x}" + PNG, "frame.header"),
        (struct.pack(">I", 2) + b"\xc3\x28" + PNG, "frame.header"),
        (struct.pack(">I", 4) + b"null" + PNG, "frame.header"),
        (frame_bytes({"type": "image", "mime": "image/png"}, PNG), "frame.type"),
        (frame_bytes({}, PNG), "frame.mime"),
        (frame_bytes({"mime": "image/bmp"}, b"BM"), "frame.mime"),
        (frame_bytes({"mime": "image/png"}, b""), "frame.image"),
        (frame_bytes({"mime": "image/png"}, b"\xff\xd8\xff"), "frame.image"),
        (frame_bytes({"mime": "image/png", "episode": "1"}, PNG), "frame.episode"),
        (frame_bytes({"mime": "image/png", "timestamp": "now"}, PNG), "frame.timestamp"),
    ],
)
def test_bad_frames(data, field):
    assert field_of(lambda: frame_parse(data)) == field


def test_frame_size_limit(settings):
    settings.SPECTATOR_MAX_FRAME_BYTES = len(PNG)
    assert frame_parse(frame_bytes({"mime": "image/png"}, PNG))[1] == PNG
    settings.SPECTATOR_MAX_FRAME_BYTES = len(PNG) - 1
    assert field_of(lambda: frame_parse(frame_bytes({"mime": "image/png"}, PNG))) == "frame.image"
