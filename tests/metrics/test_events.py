"""Every event builder (``metrics/events.py``, ``rooms/events.py``) round-trips through JSON."""

from __future__ import annotations

import json
import re

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from metrics import events as metric_events
from metrics.ingest import decisions_clean, metric_point_clean
from metrics.selectors import metric_points_recent
from metrics.services import metric_points_append
from rooms import events as room_events
from rooms.access import Visitor
from rooms.services import room_join
from tests.support.live import point

pytestmark = pytest.mark.django_db

CHANNELS_GROUP_NAME = re.compile(r"^[a-zA-Z\d\-_.]{1,99}$")


def round_trip(message: dict) -> dict:
    assert isinstance(message["type"], str)
    again = json.loads(json.dumps(message))
    assert again == message
    return again


@pytest.fixture
def full_point():
    return metric_point_clean(
        point(
            3,
            win_rate=0.25,
            loss_value=0.5,
            frames_per_second=60,
            extra={"entropy": 0.1},
            action_probabilities={"left": 0.4, "right": 0.6},
            q_values=[1.0, 2.0],
            state_values=0.3,
            selected_action="right",
            algorithm="PPO",
        )
    )


# --- Group names ------------------------------------------------------------------------------


def test_group_names_are_valid_channels_names(make_room, training_session):
    room = make_room()
    name = room_events.room_group_name(room.pk)
    assert name == f"room.{room.pk.hex}" and CHANNELS_GROUP_NAME.match(name)
    assert room_events.room_group_name(str(room.pk)) == name
    assert metric_events.session_group_name(training_session.pk) == "ts.cartpole-dqn"
    assert CHANNELS_GROUP_NAME.match(metric_events.session_group_name("a" * 64))


# --- metrics/events.py ------------------------------------------------------------------------


def test_training_metrics(full_point):
    message = round_trip(metric_events.training_metrics(full_point))
    data = message["data"]
    assert set(metric_events.METRICS_DATA_FIELDS) <= set(data)
    assert data["win_rate"] == 0.25 and data["extra"] == {"entropy": 0.1}
    assert data["action_probabilities"] == {"left": 0.4, "right": 0.6} and data["selected_action"] == "right"
    assert (data["stream"], data["seq"]) == ("t", 3)


def test_metrics_data_of_a_stored_row_equals_the_live_one(training_session, full_point):
    metric_points_append(training_session=training_session, points=[full_point])
    (row,) = metric_points_recent(training_session.pk)
    assert round_trip({"type": "x", "data": metric_events.metrics_data(row)})["data"] == metric_events.metrics_data(
        full_point
    )


def test_graph_update(full_point):
    message = round_trip(metric_events.graph_update(full_point))
    ids = [graph["graph_id"] for graph in message["graphs"]]
    assert ids == ["reward_progress", "win_rate", "learning_metrics", "performance_stats", "custom:entropy"]
    assert all(set(graph) == {"graph_id", "timestamp", "episode", "data_points"} for graph in message["graphs"])


def test_bot_decision():
    (decision,) = decisions_clean([{"action_probabilities": [0.5, 0.5], "selected_action": 0, "step": 4}])
    message = round_trip(metric_events.bot_decision(decision))
    assert message == {
        "type": "bot_decision",
        "action_probabilities": [0.5, 0.5],
        "selected_action": 0,
        "state_values": None,
        "q_values": None,
        "episode": None,
        "step": 4,
        "timestamp": None,
    }


def test_graph_config_message():
    message = round_trip(metric_events.graph_config_message(["entropy", "kl"]))
    assert [graph["graph_id"] for graph in message["graphs"]][-2:] == ["custom:entropy", "custom:kl"]
    assert round_trip(metric_events.graph_config_message([]))["graphs"][0]["graph_id"] == "reward_progress"


def test_training_status(training_session):
    message = round_trip(metric_events.training_status(training_session, message="warming up"))
    assert message == {
        "type": "training_status",
        "training_session_id": "cartpole-dqn",
        "status": "running",
        "algorithm": "DQN",
        "total_episodes": None,
        "message": "warming up",
    }


def test_metric_items_are_serialized_builders(full_point):
    items = metric_events.metric_items([full_point])
    assert [kind for kind, _text in items] == ["metrics", "metrics", "decision"]
    assert json.loads(items[0][1]) == metric_events.training_metrics(full_point)
    assert json.loads(items[1][1]) == metric_events.graph_update(full_point)
    assert json.loads(items[2][1]) == metric_events.bot_decision(full_point["decision"])


def test_metric_items_decision_only_when_the_point_has_one():
    plain = metric_point_clean(point(1))
    assert [kind for kind, _ in metric_events.metric_items([plain])] == ["metrics", "metrics"]
    q_only = metric_point_clean(point(2, q_values=[0.1, 0.2]))
    assert [kind for kind, _ in metric_events.metric_items([q_only])][-1] == "decision"
    action_only = metric_point_clean(point(3, selected_action=1))
    assert [kind for kind, _ in metric_events.metric_items([action_only])] == ["metrics", "metrics"]


def test_decision_items_and_control_item(training_session):
    decisions = decisions_clean([{"q_values": [1.0]}, {"action_probabilities": [1.0]}])
    items = metric_events.decision_items(decisions)
    assert [json.loads(text)["type"] for _kind, text in items] == ["bot_decision", "bot_decision"]
    kind, text = metric_events.control_item(metric_events.training_status(training_session))
    assert kind == "control" and json.loads(text)["type"] == "training_status"


def test_stream_envelope(full_point):
    items = metric_events.metric_items([full_point])
    envelope = metric_events.stream_envelope("run", items)
    again = json.loads(json.dumps(envelope))
    assert again["type"] == "stream.items" and again["training_session_id"] == "run"
    assert [tuple(item) for item in again["items"]] == items


# --- rooms/events.py --------------------------------------------------------------------------


def test_spectator_entry_and_list(make_room, make_user):
    room = make_room()
    ann = room_join(room=room, visitor=Visitor(user=make_user("ann")), display_name="Ann").spectator
    guest = room_join(room=room, visitor=Visitor(anon_key="g" * 64), display_name="Guest").spectator
    entry = round_trip({"type": "x", **room_events.spectator_entry(ann)})
    assert (entry["spectator_id"], entry["display_name"], entry["username"]) == (ann.pk, "Ann", "ann")
    assert entry["joined_at"]
    message = round_trip(room_events.spectator_list(room.pk))
    assert message["count"] == 2
    assert [(e["display_name"], e["username"]) for e in message["spectators"]] == [("Ann", "ann"), ("Guest", None)]
    assert guest.pk in [e["spectator_id"] for e in message["spectators"]]


def test_spectator_list_is_capped(make_room, monkeypatch):
    room = make_room(max_spectators=10)
    for index in range(3):
        room_join(room=room, visitor=Visitor(anon_key=f"{index}" * 64))
    monkeypatch.setattr(room_events, "SPECTATOR_LIST_LIMIT", 2)
    message = round_trip(room_events.spectator_list(room.pk))
    assert message["count"] == 3 and len(message["spectators"]) == 2


def test_spectator_removed_and_room_closed(make_room, make_user, owner):
    from rooms.services import room_close, spectator_kick

    room = make_room()
    ann = room_join(room=room, visitor=Visitor(user=make_user("ann"))).spectator
    kicked = spectator_kick(spectator=ann, actor=owner)
    assert round_trip(room_events.spectator_removed(kicked)) == {
        "type": "room_closed",
        "reason": "kicked",
        "spectator_id": ann.pk,
    }
    room_close(room=room, actor=owner)
    assert round_trip(room_events.room_closed(room)) == {
        "type": "room_closed",
        "room_code": room.code,
        "reason": "closed",
    }


def test_join_request_builders(make_room, make_user):
    room = make_room(require_approval=True)
    request = room_join(
        room=room, visitor=Visitor(user=make_user("ann")), display_name="Ann", message="hi"
    ).join_request
    created = round_trip(room_events.join_request_created(request))
    assert created["type"] == "join_request"
    assert {k: created["request"][k] for k in ("request_id", "display_name", "username", "message", "status")} == {
        "request_id": request.pk,
        "display_name": "Ann",
        "username": "ann",
        "message": "hi",
        "status": "pending",
    }
    anonymous = room_join(room=room, visitor=Visitor(anon_key="z" * 64), display_name="Zed").join_request
    decided = round_trip(room_events.join_request_decided(anonymous))
    assert decided["type"] == "join_request_decided" and decided["request"]["username"] is None


def test_room_event_envelope(make_room):
    room = make_room()
    message = room_events.room_closed(room)
    envelope = round_trip(
        room_events.room_event(
            room.pk, message, audience=room_events.AUDIENCE_SPECTATOR, spectator_id=3, close_code=4403
        )
    )
    assert envelope["type"] == "room.event" and envelope["room_id"] == str(room.pk)
    assert json.loads(envelope["text"]) == message
    assert (envelope["audience"], envelope["spectator_id"], envelope["close_code"]) == ("spectator", 3, 4403)
    assert room_events.room_event(room.pk, message)["audience"] == "all"


# --- Publishing: once, after commit ----------------------------------------------------------


def _listen(group: str) -> tuple:
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)("test.")
    async_to_sync(layer.group_add)(group, channel)
    return layer, channel


def test_room_publish_after_commit_and_not_on_rollback(make_room, django_capture_on_commit_callbacks):
    room = make_room()
    layer, channel = _listen(room_events.room_group_name(room.pk))
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError):
            with transaction.atomic():
                room_events.publish_after_commit(room, room_events.room_closed(room))
                raise RuntimeError("rolled back")
    assert callbacks == []
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with transaction.atomic():
            room_events.publish_after_commit(room, {"type": "join_request", "request": {}})
    assert len(callbacks) == 1
    envelope = async_to_sync(layer.receive)(channel)
    assert envelope["audience"] == "managers"  # join requests go to managers by default
    async_to_sync(layer.group_discard)(room_events.room_group_name(room.pk), channel)


def test_stream_publish_after_commit_once_per_batch(training_session, django_capture_on_commit_callbacks):
    layer, channel = _listen(metric_events.session_group_name(training_session.pk))
    points = [metric_point_clean(point(i)) for i in range(3)]
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError):
            with transaction.atomic():
                metric_points_append(training_session=training_session, points=points)
                raise RuntimeError("rolled back")
    assert callbacks == []
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        metric_points_append(training_session=training_session, points=points)
    assert len(callbacks) == 1
    envelope = async_to_sync(layer.receive)(channel)
    assert envelope["type"] == "stream.items" and len(envelope["items"]) == 4
    messages = [json.loads(text) for _kind, text in envelope["items"]]
    # Each point's training_metrics, then one graph_update for the whole batch.
    assert [message["type"] for message in messages] == ["training_metrics"] * 3 + ["graph_update"]
    assert [message["data"]["seq"] for message in messages[:3]] == [0, 1, 2]
    assert [entry["episode"] for entry in messages[3]["graphs"]] == [0, 1, 2]
    async_to_sync(layer.group_discard)(metric_events.session_group_name(training_session.pk), channel)
