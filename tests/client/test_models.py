"""MetricsData, the enums, access control, sessions, rooms and frames: plain data, no server."""

import json
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from spectator_client import (
    AccessLevel,
    MetricsData,
    RoomAccessControl,
    RoomInfo,
    SpectatorMode,
    SpectatorSession,
    frame_pack,
    frame_parse,
)
from spectator_client.models import metrics_coerce, metrics_point
from spectator_client.sequence import PointSequence

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def full_metrics() -> MetricsData:
    return MetricsData(
        timestamp=1700000000.5,
        episode=12,
        total_episodes=1000,
        current_reward=3.5,
        average_reward=2.25,
        best_reward=7.0,
        episode_length=200,
        win_rate=0.4,
        loss_value=0.01,
        learning_rate=0.001,
        epsilon=0.1,
        model_generation=3,
        algorithm="DQN",
        training_time_elapsed=60.0,
        action_probabilities={"left": 0.25, "right": 0.75},
        state_values=1.5,
        q_values=[0.1, 0.9],
        selected_action="right",
        actions_per_second=120.0,
        frames_per_second=60.0,
        memory_usage_mb=512.0,
        extra={"entropy": 0.7},
    )


def test_metrics_data_round_trips_through_json():
    metrics = full_metrics()
    data = json.loads(json.dumps(metrics.to_dict()))
    assert MetricsData.from_dict(data) == metrics


def test_metrics_data_keeps_the_seed_field_order_for_positional_use():
    metrics = MetricsData(1.0, 2, 10, 0.5, 0.4, 0.9, 100, 0.5, 0.02, 0.001, 0.3, 1, "PPO", 12.5)
    assert (metrics.episode, metrics.algorithm, metrics.training_time_elapsed) == (2, "PPO", 12.5)
    assert list(metrics.to_dict())[:14] == [
        "timestamp", "episode", "total_episodes", "current_reward", "average_reward", "best_reward",
        "episode_length", "win_rate", "loss_value", "learning_rate", "epsilon", "model_generation",
        "algorithm", "training_time_elapsed",
    ]  # fmt: skip


def test_from_dict_ignores_wire_keys_and_nulls():
    metrics = MetricsData.from_dict({"episode": 4, "stream": "py-1", "seq": 9, "algorithm": None, "epsilon": None})
    assert metrics.episode == 4 and metrics.algorithm == "" and metrics.epsilon is None and metrics.extra == {}


def test_numpy_like_values_become_plain_numbers():
    class Scalar:
        def __init__(self, value):
            self.value = value

        def item(self):
            return self.value

    class Array:
        def tolist(self):
            return [0.5, 0.5]

    data = MetricsData(current_reward=Scalar(2.5), action_probabilities=Array(), extra={"kl": Scalar(0.1)}).to_dict()
    assert data["current_reward"] == 2.5 and data["action_probabilities"] == [0.5, 0.5] and data["extra"] == {"kl": 0.1}
    json.dumps(data)


def test_a_dict_with_custom_scalars_puts_them_in_extra():
    metrics = metrics_coerce({"episode": 3, "current_reward": 1.0, "kl_divergence": 0.02, "extra": {"clip": 0.2}})
    assert metrics.extra == {"clip": 0.2, "kl_divergence": 0.02}
    with pytest.raises(TypeError):
        metrics_coerce({"episode": 1, "note": "not a number"})
    with pytest.raises(TypeError):
        metrics_coerce(["not", "metrics"])


def test_wire_point_carries_stream_and_seq_and_omits_unset_fields():
    point = metrics_point(MetricsData(timestamp=5.0, episode=1, win_rate=0.5), stream="py-abc", seq=7)
    assert point == {"timestamp": 5.0, "episode": 1, "win_rate": 0.5, "stream": "py-abc", "seq": 7}


def test_point_sequence_numbers_points_in_order_under_a_random_stream():
    first, second = PointSequence(), PointSequence()
    assert first.stream != second.stream
    assert [first.point({"episode": i})["seq"] for i in range(3)] == [0, 1, 2]
    with pytest.raises(TypeError):
        first.point("nonsense")
    assert first.point({"episode": 9})["seq"] == 3  # a refused value does not use up a number


def test_enums_have_the_contract_values():
    assert [m.value for m in SpectatorMode] == ["live_training", "replay", "comparison"]
    assert [a.value for a in AccessLevel] == ["public", "password", "invite_only", "private"]
    assert SpectatorMode("replay") is SpectatorMode.REPLAY and AccessLevel.PUBLIC == "public"


def test_room_access_control_payload_and_display():
    control = RoomAccessControl(
        "password", password="hunter22", max_spectators=3, allowed_users={"bob"}, blocked_users=["eve"]
    )
    assert control.access_level is AccessLevel.PASSWORD
    assert control.to_payload() == {
        "access_level": "password",
        "password": "hunter22",
        "max_spectators": 3,
        "allowed_users": ["bob"],
        "blocked_users": ["eve"],
        "require_approval": False,
        "auto_approve_timeout": 0,
    }
    shown = control.to_dict()
    assert "password" not in shown and shown["password_protected"] is True
    assert RoomAccessControl() == RoomAccessControl(AccessLevel.PUBLIC, None, 10, set(), set(), False, 0)


ROOM = {
    "room_id": "5b0c9c1e-1111-4222-8333-944445555666",
    "room_code": "ABC234",
    "name": "",
    "training_session_id": "cartpole",
    "creator_id": "alice",
    "created_at": "2026-11-24T10:00:00.123456Z",
    "expires_at": "2026-11-25T10:00:00Z",
    "room_status": "active",
    "spectator_mode": "live_training",
    "access_control": {"access_level": "password", "password_protected": True, "max_spectators": 4,
                       "require_approval": False, "auto_approve_timeout": 0, "allowed_users": ["bob"]},
    "current_spectators": 2,
    "can_manage": True,
    "pending_requests": 0,
    "room_password": "s3cret-pass",
}  # fmt: skip


def test_spectator_session_from_a_room_and_to_dict():
    session = SpectatorSession.from_room(ROOM)
    assert session.session_id == session.room_id == ROOM["room_id"]
    assert session.expires_at == datetime(2026, 11, 25, 10, tzinfo=UTC)
    assert (session.max_spectators, session.current_spectators, session.room_password) == (4, 2, "s3cret-pass")
    data = json.loads(json.dumps(session.to_dict()))
    assert data["spectator_mode"] == "live_training" and data["expires_at"].startswith("2026-11-25T10:00:00")


def test_room_info_from_the_api_and_to_dict():
    info = RoomInfo.from_api(ROOM, spectator_list=[{"spectator_id": 1, "display_name": "bob"}])
    assert info.access_control.allowed_users == {"bob"} and info.access_control.max_spectators == 4
    data = json.loads(json.dumps(info.to_dict()))
    assert data["room_code"] == "ABC234" and data["spectator_list"][0]["display_name"] == "bob"
    assert data["access_control"]["password_protected"] is True


def test_frames_pack_and_parse():
    message = frame_pack(PNG, episode=3, step=40, timestamp=1.5)
    header, image = frame_parse(message)
    assert header == {"type": "frame", "mime": "image/png", "episode": 3, "step": 40, "timestamp": 1.5}
    assert image == PNG
    with pytest.raises(ValueError):
        frame_pack(b"GIF89a....")
    with pytest.raises(ValueError):
        frame_pack(b"")
    with pytest.raises(ValueError):
        frame_parse(b"\x00\x00\x10\x00{}")


def test_the_package_never_imports_django():
    code = "import sys, spectator_client, spectator_client.integrations; print('django' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
