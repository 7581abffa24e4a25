"""The room WebSocket (``/ws/rooms/<CODE>/``) and the per-process hub behind it (DESIGN.md 4, 4a)."""

from __future__ import annotations

import asyncio
import json
import secrets
from dataclasses import dataclass
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from metrics import events as metric_events
from metrics.ingest import metric_points_clean
from metrics.models import MetricPoint
from metrics.services import metric_points_append, training_session_status_set
from rooms import services
from rooms.access import Visitor
from rooms.hub import CLOSE_TOO_SLOW, get_hub
from rooms.models import Ban, JoinRequest, Room, Spectator
from rooms.selectors import room_get_with_counts
from rooms.services import anon_key_for, room_join
from rooms.tickets import ticket_issue
from tests.support.live import (
    PNG,
    anonymous_cookie,
    close_thread_connections,
    expect_closed,
    expect_refused,
    frame_bytes,
    frame_split,
    login_cookie,
    old_ticket,
    point,
    receive_json,
    receive_type,
    room_path,
    ws_open,
)

pytestmark = pytest.mark.django_db(transaction=True)
db = database_sync_to_async


@pytest.fixture(autouse=True)
async def _closes_thread_connections():
    yield
    await close_thread_connections()


@dataclass
class Seat:
    spectator: Spectator
    ticket: str
    visitor_token: str = ""


@pytest.fixture
def seat(make_user):
    """Admit someone to ``room`` (a named user, or an anonymous browser) and issue their ticket."""

    def make(room, username: str | None = None, *, display_name: str | None = None) -> Seat:
        token = ""
        if username:
            visitor = Visitor(user=make_user(username))
        else:
            token = secrets.token_urlsafe(16)
            visitor = Visitor(anon_key=anon_key_for(token))
        result = room_join(room=room, visitor=visitor, display_name=display_name)
        assert result.status == "approved", result
        return Seat(result.spectator, ticket_issue(room_id=room.pk, spectator_id=result.spectator.pk), token)

    return make


@pytest.fixture
def room(make_room):
    return make_room(max_spectators=5)


def ingest(training_session, points) -> None:
    metric_points_append(training_session=training_session, points=metric_points_clean(points))


async def watch(room, seat: Seat):
    """Open a spectator's socket with their ticket; return it and its snapshot."""
    communicator = await ws_open(room_path(room.code, seat.ticket))
    config = await receive_json(communicator)
    assert config["type"] == "graph_config", config
    snapshot = await receive_json(communicator)
    assert snapshot["type"] == "snapshot", snapshot
    return communicator, snapshot


async def watch_as(room, user):
    """Open a signed-in browser's socket (session cookie, no ticket); return it and its snapshot."""
    cookie = await db(login_cookie)(user)
    communicator = await ws_open(room_path(room.code), cookie=cookie)
    assert (await receive_json(communicator))["type"] == "graph_config"
    snapshot = await receive_json(communicator)
    assert snapshot["type"] == "snapshot", snapshot
    return communicator, snapshot


async def close_all(*communicators) -> None:
    for communicator in communicators:
        await communicator.disconnect()


async def assert_usable(communicator) -> None:
    """The socket still answers: a ping gets its pong."""
    await communicator.send_json_to({"type": "ping", "t": 7})
    assert await receive_type(communicator, "pong") == {"type": "pong", "t": 7}


# --- Admission and close codes -----------------------------------------------------------------


async def test_no_ticket_and_no_session_closes_4401(room):
    communicator = await ws_open(room_path(room.code))
    await expect_refused(communicator, "ticket_required", 4401)


@pytest.mark.parametrize("kind", ["garbage", "expired", "other_room", "tampered"])
async def test_bad_ticket_closes_4401(room, make_room, seat, kind):
    admitted = await db(seat)(room, "ann")
    if kind == "garbage":
        ticket = "not-a-ticket"
    elif kind == "expired":
        ticket = old_ticket(room_id=room.pk, spectator_id=admitted.spectator.pk)
    elif kind == "other_room":
        other = await db(make_room)()
        ticket = ticket_issue(room_id=other.pk, spectator_id=admitted.spectator.pk)
    else:
        ticket = admitted.ticket[:-2] + ("AA" if not admitted.ticket.endswith("AA") else "BB")
    communicator = await ws_open(room_path(room.code, ticket))
    await expect_refused(communicator, "ticket_required", 4401)


async def test_ticket_within_its_max_age_is_accepted(room, seat):
    admitted = await db(seat)(room, "ann")
    communicator, snapshot = await watch(
        room, Seat(admitted.spectator, old_ticket(room_id=room.pk, spectator_id=admitted.spectator.pk, age=60))
    )
    assert snapshot["viewer"]["spectator_id"] == admitted.spectator.pk
    await communicator.disconnect()


async def test_unknown_room_closes_4404():
    communicator = await ws_open(room_path("ZZZZZZ", "whatever"))
    await expect_refused(communicator, "room_not_found", 4404)


async def test_private_room_looks_missing_to_a_stranger(make_room, make_user):
    private = await db(make_room)(access_level="private")
    stranger = await db(make_user)("stranger")
    cookie = await db(login_cookie)(stranger)
    communicator = await ws_open(room_path(private.code), cookie=cookie)
    await expect_refused(communicator, "room_not_found", 4404)
    # A bad ticket does not reveal the room either.
    communicator = await ws_open(room_path(private.code, "not-a-ticket"))
    await expect_refused(communicator, "room_not_found", 4404)


async def test_private_room_admits_an_allowed_users_ticket_without_a_session(make_room, make_user):
    # The client package joins with its API token and connects with the ticket alone (no session).
    friend = await db(make_user)("friend")
    private = await db(make_room)(access_level="private", allowed_users=["friend"])
    result = await db(room_join)(room=private, visitor=Visitor(user=friend))
    ticket = ticket_issue(room_id=private.pk, spectator_id=result.spectator.pk)
    communicator, snapshot = await watch(private, Seat(result.spectator, ticket))
    assert snapshot["viewer"]["spectator_id"] == result.spectator.pk
    await communicator.disconnect()


@pytest.mark.parametrize("how", ["closed", "expired_status", "past_expiry"])
async def test_ended_room_closes_4410(room, seat, owner, how):
    admitted = await db(seat)(room, "ann")
    if how == "closed":
        await db(services.room_close)(room=room, actor=owner)
        code = "room_closed"
    elif how == "expired_status":
        await db(Room.objects.filter(pk=room.pk).update)(expires_at=timezone.now() - timedelta(seconds=1))
        await db(services.rooms_expire)()
        code = "room_expired"
    else:
        # Past its expiry but not swept yet: refused all the same.
        await db(Room.objects.filter(pk=room.pk).update)(expires_at=timezone.now() - timedelta(seconds=1))
        code = "room_expired"
    communicator = await ws_open(room_path(room.code, admitted.ticket))
    await expect_refused(communicator, code, 4410)


async def test_manager_session_on_a_closed_room_closes_4410(room, owner):
    await db(services.room_close)(room=room, actor=owner)
    cookie = await db(login_cookie)(owner)
    communicator = await ws_open(room_path(room.code), cookie=cookie)
    await expect_refused(communicator, "room_closed", 4410)


async def test_full_room_refuses_a_reconnect_with_4409(make_room, seat):
    small = await db(make_room)(max_spectators=1)
    ann = await db(seat)(small, "ann")
    communicator, _snapshot = await watch(small, ann)
    await communicator.disconnect()  # Ann's seat is free now ...
    await db(seat)(small, "bob")  # ... and Bob takes it.
    communicator = await ws_open(room_path(small.code, ann.ticket))
    await expect_refused(communicator, "room_full", 4409)


async def test_kicked_spectators_ticket_closes_4403(room, seat, owner):
    ann = await db(seat)(room, "ann")
    await db(services.spectator_kick)(spectator=ann.spectator, actor=owner)
    communicator = await ws_open(room_path(room.code, ann.ticket))
    await expect_refused(communicator, "join_denied", 4403)


async def test_banned_spectators_ticket_closes_4403(room, seat, owner):
    ann = await db(seat)(room, "ann")
    await db(services.ban_create)(room=room, actor=owner, spectator=ann.spectator)
    communicator = await ws_open(room_path(room.code, ann.ticket))
    await expect_refused(communicator, "banned", 4403)


async def test_anonymous_present_spectator_connects_by_session(room, seat):
    guest = await db(seat)(room, display_name="Guest")
    cookie = await db(anonymous_cookie)(guest.visitor_token)
    communicator = await ws_open(room_path(room.code), cookie=cookie)
    assert (await receive_json(communicator))["type"] == "graph_config"
    snapshot = await receive_json(communicator)
    assert snapshot["viewer"] == {"spectator_id": guest.spectator.pk, "display_name": "Guest", "is_manager": False}
    await communicator.disconnect()


async def test_signed_in_user_who_has_not_joined_needs_a_ticket(room, make_user):
    stranger = await db(make_user)("stranger")
    cookie = await db(login_cookie)(stranger)
    communicator = await ws_open(room_path(room.code), cookie=cookie)
    await expect_refused(communicator, "ticket_required", 4401)


# --- Snapshot ---------------------------------------------------------------------------------


async def test_connect_sends_graph_config_then_snapshot_with_history(room, seat, training_session):
    await db(ingest)(training_session, [point(i, extra={"entropy": i / 10}) for i in range(3)])
    ann = await db(seat)(room, "ann", display_name="Ann")
    communicator = await ws_open(room_path(room.code, ann.ticket))
    config = await receive_json(communicator)
    assert config["type"] == "graph_config"
    graph_ids = [graph["graph_id"] for graph in config["graphs"]]
    assert graph_ids[:5] == ["reward_progress", "win_rate", "episode_length", "learning_metrics", "performance_stats"]
    assert "custom:entropy" in graph_ids
    assert all({"graph_id", "title", "y_label", "metrics", "max_points"} <= set(graph) for graph in config["graphs"])
    snapshot = await receive_json(communicator)
    assert snapshot["type"] == "snapshot"
    assert [entry["seq"] for entry in snapshot["history"]] == [0, 1, 2]
    assert snapshot["history"][1]["extra"] == {"entropy": 0.1}
    assert snapshot["current_metrics"] == snapshot["history"][-1]
    assert snapshot["current_metrics"]["current_reward"] == 2.0
    assert snapshot["viewer"] == {"spectator_id": ann.spectator.pk, "display_name": "Ann", "is_manager": False}
    assert snapshot["spectator_count"] == 1
    assert [entry["display_name"] for entry in snapshot["spectators"]] == ["Ann"]
    assert snapshot["room"]["room_code"] == room.code
    assert snapshot["training_session"]["id"] == training_session.pk
    assert "pending_requests" not in snapshot
    assert await communicator.receive_nothing()
    await communicator.disconnect()


async def test_points_published_while_the_snapshot_is_read_come_after_it(room, seat, training_session, monkeypatch):
    from rooms.consumers import RoomConsumer

    real_snapshot = RoomConsumer._snapshot

    def snapshot_with_a_point_arriving_meanwhile(consumer):
        ingest(training_session, [point(1)])
        return real_snapshot(consumer)

    monkeypatch.setattr(RoomConsumer, "_snapshot", snapshot_with_a_point_arriving_meanwhile)
    ann = await db(seat)(room, "ann")
    communicator, snapshot = await watch(room, ann)
    assert [entry["seq"] for entry in snapshot["history"]] == [1]
    # Published after subscribing: delivered after the snapshot (the client drops it by seq).
    assert (await receive_json(communicator))["data"]["seq"] == 1
    assert (await receive_json(communicator))["type"] == "graph_update"
    await communicator.disconnect()


async def test_empty_history_snapshot(room, seat):
    ann = await db(seat)(room, "ann")
    communicator, snapshot = await watch(room, ann)
    assert snapshot["history"] == [] and snapshot["current_metrics"] is None
    await communicator.disconnect()


async def test_manager_snapshot_lists_pending_requests(make_room, owner):
    gated = await db(make_room)(require_approval=True)
    request = (await db(room_join)(room=gated, visitor=Visitor(anon_key="a" * 64), display_name="Knocker")).join_request
    communicator, snapshot = await watch_as(gated, owner)
    assert snapshot["viewer"]["is_manager"] is True
    assert [(r["request_id"], r["display_name"], r["status"]) for r in snapshot["pending_requests"]] == [
        (request.pk, "Knocker", "pending")
    ]
    await communicator.disconnect()


# --- The live stream --------------------------------------------------------------------------


async def test_ingest_reaches_spectators_as_training_metrics_and_graph_update(room, seat, training_session):
    ann = await db(seat)(room, "ann")
    communicator, _snapshot = await watch(room, ann)
    await db(ingest)(training_session, [point(1, win_rate=0.5, loss_value=0.25)])
    metrics = await receive_json(communicator)
    assert metrics["type"] == "training_metrics"
    assert metrics["data"]["current_reward"] == 1.0 and metrics["data"]["win_rate"] == 0.5
    assert metrics["data"]["seq"] == 1 and metrics["data"]["extra"] == {}
    update = await receive_json(communicator)
    assert update["type"] == "graph_update"
    by_id = {graph["graph_id"]: graph for graph in update["graphs"]}
    assert by_id["reward_progress"]["data_points"] == {"current_reward": 1.0}
    assert by_id["win_rate"]["data_points"] == {"win_rate": 0.5}
    assert by_id["learning_metrics"]["data_points"] == {"loss_value": 0.25}
    assert "performance_stats" not in by_id
    assert await communicator.receive_nothing()
    await communicator.disconnect()


async def test_new_custom_scalar_sends_a_new_graph_config(room, seat, training_session):
    ann = await db(seat)(room, "ann")
    communicator, _snapshot = await watch(room, ann)
    await db(ingest)(training_session, [point(1, extra={"entropy": 0.5})])
    config = await receive_json(communicator)
    assert config["type"] == "graph_config"
    assert config["graphs"][-1]["graph_id"] == "custom:entropy"
    assert (await receive_json(communicator))["type"] == "training_metrics"
    update = await receive_json(communicator)
    assert {
        "graph_id": "custom:entropy",
        "timestamp": 1_700_000_001.0,
        "episode": 1,
        "data_points": {"entropy": 0.5},
    } in (update["graphs"])
    # The same key again: no new graph_config.
    await db(ingest)(training_session, [point(2, extra={"entropy": 0.4})])
    assert [(await receive_json(communicator))["type"] for _ in range(2)] == ["training_metrics", "graph_update"]
    assert await communicator.receive_nothing()
    await communicator.disconnect()


async def test_bot_decisions_from_ingest_socket_metric_point_and_http(
    room, seat, training_session, make_token, owner, api_client
):
    ann = await db(seat)(room, "ann")
    communicator, _snapshot = await watch(room, ann)
    token = await db(make_token)(owner)
    trainer = await ws_open(f"/ws/ingest/{training_session.pk}/", token=token)

    await trainer.send_json_to(
        {"type": "decision", "action_probabilities": {"left": 0.25, "right": 0.75}, "selected_action": "right"}
    )
    decision = await receive_json(communicator)
    assert decision["type"] == "bot_decision"
    assert decision["action_probabilities"] == {"left": 0.25, "right": 0.75}
    assert decision["selected_action"] == "right"

    await trainer.send_json_to(
        {"type": "decisions", "decisions": [{"q_values": [1.0, 2.0], "state_values": 0.5, "step": 3}]}
    )
    decision = await receive_json(communicator)
    assert (decision["type"], decision["q_values"], decision["state_values"], decision["step"]) == (
        "bot_decision",
        [1.0, 2.0],
        0.5,
        3,
    )

    await trainer.send_json_to(
        {"type": "metrics", "ref": "m", "points": [point(1, action_probabilities=[0.5, 0.5], selected_action=1)]}
    )
    assert (await receive_json(trainer))["type"] == "ack"
    types = [(await receive_json(communicator))["type"] for _ in range(3)]
    assert types == ["training_metrics", "graph_update", "bot_decision"]

    client = api_client(owner)
    response = await db(client.post)(
        f"/api/v1/sessions/{training_session.pk}/ingest/",
        {"decisions": [{"action_probabilities": [0.1, 0.9], "selected_action": 1}]},
        format="json",
    )
    assert response.status_code == 200, response.content
    decision = await receive_json(communicator)
    assert decision["type"] == "bot_decision" and decision["action_probabilities"] == [0.1, 0.9]
    assert await communicator.receive_nothing()
    await close_all(trainer, communicator)


async def test_room_without_decision_visualization_gets_no_decisions(make_room, seat, training_session):
    quiet = await db(make_room)(enable_decision_visualization=False)
    ann = await db(seat)(quiet, "ann")
    communicator, _snapshot = await watch(quiet, ann)
    await db(ingest)(training_session, [point(1, action_probabilities=[0.5, 0.5])])
    assert [(await receive_json(communicator))["type"] for _ in range(2)] == ["training_metrics", "graph_update"]
    assert await communicator.receive_nothing()
    await communicator.disconnect()


async def test_binary_frames_arrive_intact(room, seat, training_session, make_token, owner, api_client):
    ann = await db(seat)(room, "ann")
    communicator, _snapshot = await watch(room, ann)
    token = await db(make_token)(owner)
    trainer = await ws_open(f"/ws/ingest/{training_session.pk}/", token=token)
    await trainer.send_to(bytes_data=frame_bytes({"type": "frame", "mime": "image/png", "episode": 4, "step": 9}, PNG))
    output = await communicator.receive_output(3)
    assert output["type"] == "websocket.send" and output.get("text") is None
    header, image = frame_split(output["bytes"])
    assert header == {
        "type": "frame",
        "mime": "image/png",
        "episode": 4,
        "step": 9,
        "timestamp": None,
        "training_session_id": training_session.pk,
    }
    assert image == PNG

    client = api_client(owner)
    body = frame_bytes({"mime": "image/jpeg", "step": 10}, b"\xff\xd8\xff\xe0jpeg-bytes")
    response = await db(client.generic)(
        "POST", f"/api/v1/sessions/{training_session.pk}/frames/", body, content_type="application/octet-stream"
    )
    assert response.status_code == 202, response.content
    header, image = frame_split((await communicator.receive_output(3))["bytes"])
    assert (header["mime"], header["step"], image) == ("image/jpeg", 10, b"\xff\xd8\xff\xe0jpeg-bytes")
    assert await communicator.receive_nothing()
    await close_all(trainer, communicator)


async def test_a_late_joiner_sees_the_last_frame_and_decision_at_once(
    make_room, seat, training_session, make_token, owner
):
    room = await db(make_room)(max_spectators=5)
    first, _snapshot = await watch(room, await db(seat)(room, "ann"))
    trainer = await ws_open(f"/ws/ingest/{training_session.pk}/", token=await db(make_token)(owner))
    for step in (1, 2):
        header = {"type": "frame", "mime": "image/png", "episode": 4, "step": step}
        await trainer.send_to(bytes_data=frame_bytes(header, PNG))
        decision = {"type": "decision", "episode": 4, "step": step, "action_probabilities": [0.25, 0.75]}
        await trainer.send_to(text_data=json.dumps(decision))
    for _ in range(4):  # the first spectator got all four: the stream went through this hub
        await first.receive_output(3)
    # The trainer is quiet now; someone joining sees step 2 right after the snapshot.
    late, _snapshot = await watch(room, await db(seat)(room, "bob"))
    outputs = [await late.receive_output(3) for _ in range(2)]
    frames = [frame_split(o["bytes"])[0] for o in outputs if o.get("bytes")]
    decisions = [json.loads(o["text"]) for o in outputs if o.get("text")]
    assert [f["step"] for f in frames] == [2]
    assert [(d["type"], d["step"]) for d in decisions] == [("bot_decision", 2)]
    assert await late.receive_nothing()
    await close_all(trainer, first, late)


async def test_a_late_joiner_gets_no_cached_decision_when_the_room_hides_decisions(
    make_room, seat, training_session, make_token, owner
):
    room = await db(make_room)(max_spectators=5, enable_decision_visualization=False)
    first, _snapshot = await watch(room, await db(seat)(room, "ann"))
    trainer = await ws_open(f"/ws/ingest/{training_session.pk}/", token=await db(make_token)(owner))
    await trainer.send_to(bytes_data=frame_bytes({"type": "frame", "mime": "image/png", "step": 7}, PNG))
    await trainer.send_to(text_data=json.dumps({"type": "decision", "step": 7, "action_probabilities": [1.0]}))
    assert frame_split((await first.receive_output(3))["bytes"])[0]["step"] == 7
    late, _snapshot = await watch(room, await db(seat)(room, "bob"))
    assert frame_split((await late.receive_output(3))["bytes"])[0]["step"] == 7
    assert await late.receive_nothing()
    await close_all(trainer, first, late)


async def test_training_status_reaches_spectators(room, seat, training_session, make_token, owner):
    ann = await db(seat)(room, "ann")
    communicator, _snapshot = await watch(room, ann)
    token = await db(make_token)(owner)
    trainer = await ws_open(f"/ws/ingest/{training_session.pk}/", token=token)
    await trainer.send_json_to({"type": "status", "status": "paused", "message": "lunch", "ref": 5})
    assert await receive_json(trainer) == {"type": "ack", "ref": 5}
    status = await receive_json(communicator)
    assert status == {
        "type": "training_status",
        "training_session_id": training_session.pk,
        "status": "paused",
        "algorithm": "DQN",
        "total_episodes": None,
        "message": "lunch",
    }
    await db(training_session_status_set)(training_session=training_session, status="running")
    assert (await receive_json(communicator))["status"] == "running"
    await close_all(trainer, communicator)


async def test_spectator_list_on_join_and_leave(room, seat):
    ann = await db(seat)(room, "ann", display_name="Ann")
    first, _snapshot = await watch(room, ann)
    bob = await db(seat)(room, "bob", display_name="Bob")
    joined = await receive_json(first)
    assert joined["type"] == "spectator_list" and joined["count"] == 2
    assert [entry["display_name"] for entry in joined["spectators"]] == ["Ann", "Bob"]
    second, snapshot = await watch(room, bob)
    assert snapshot["spectator_count"] == 2
    assert await first.receive_nothing()  # Bob's socket reuses his seat: no new list.
    await second.disconnect()
    left = await receive_json(first)
    assert (left["type"], left["count"], [e["display_name"] for e in left["spectators"]]) == (
        "spectator_list",
        1,
        ["Ann"],
    )
    await first.disconnect()


async def test_a_crowd_joining_gets_the_latest_spectator_list_not_one_per_join(make_room, seat, settings):
    settings.SPECTATOR_LIST_INTERVAL = 1.0
    room = await db(make_room)(max_spectators=30)
    watcher, _snapshot = await watch(room, await db(seat)(room, "ann", display_name="Ann"))
    loop = asyncio.get_running_loop()
    started = loop.time()
    for i in range(12):
        await db(seat)(room, f"user{i}", display_name=f"User {i}")
    elapsed = loop.time() - started
    lists = []
    while not lists or lists[-1]["count"] < 13:
        message = await receive_json(watcher, timeout=5)
        assert message["type"] == "spectator_list", message
        lists.append(message)
    assert await watcher.receive_nothing(timeout=1.2)  # nothing was held back after the latest
    # One list when the first joined, then at most one per interval: never one per join.
    assert len(lists) <= 2 + int(elapsed / settings.SPECTATOR_LIST_INTERVAL) < 12, (len(lists), elapsed)
    assert [entry["display_name"] for entry in lists[-1]["spectators"]] == ["Ann", *(f"User {i}" for i in range(12))]
    await watcher.disconnect()


async def test_the_heartbeat_keeps_connected_spectators_seen_and_stops_after_the_last_one(room, seat, settings):
    from rooms import consumers

    settings.SPECTATOR_PRESENCE_TIMEOUT = 0.3  # a beat every 0.1 s
    ann = await db(seat)(room, "ann")
    long_ago = timezone.now() - timedelta(hours=1)
    await db(Spectator.objects.filter(pk=ann.spectator.pk).update)(last_seen_at=long_ago)
    communicator, _snapshot = await watch(room, ann)
    seen = await wait_for_value(
        db(lambda: Spectator.objects.get(pk=ann.spectator.pk).last_seen_at), lambda value: value > long_ago
    )
    # Seen recently, so the stale-seat sweep leaves the connected spectator in place.
    assert timezone.now() - seen < timedelta(minutes=5)
    assert await db(services.spectators_expire_stale)(now=seen) == 0
    heartbeat = consumers._heartbeat_task
    assert heartbeat is not None and not heartbeat.done()
    await communicator.disconnect()
    await asyncio.wait_for(heartbeat, 5)  # nobody local: the heartbeat ends by itself


async def test_the_hub_rejoins_its_groups_periodically(room, seat, monkeypatch):
    from channels.layers import get_channel_layer

    from rooms import hub as hub_module
    from rooms import subscriber as subscriber_module

    monkeypatch.setattr(subscriber_module, "GROUP_REFRESH_SECONDS", 0.05)
    layer = get_channel_layer()
    joined = asyncio.Queue()
    real_group_add = layer.group_add

    async def group_add(group, channel):
        await joined.put(group)
        return await real_group_add(group, channel)

    monkeypatch.setattr(layer, "group_add", group_add)
    communicator, _snapshot = await watch(room, await db(seat)(room, "ann"))
    groups = [await asyncio.wait_for(joined.get(), 5) for _ in range(6)]
    # Joined once on attach, then again and again by the refresher: memberships never lapse.
    assert groups.count(hub_module.room_group_name(room.pk)) >= 2
    assert groups.count(metric_events.session_group_name(room.training_session_id)) >= 2
    await communicator.disconnect()


async def test_after_a_channel_layer_failure_the_hub_rejoins_and_spectators_reconnect(
    room, seat, training_session, monkeypatch
):
    from channels.layers import get_channel_layer

    from rooms.hub import CLOSE_SERVICE_RESTART

    layer = get_channel_layer()
    communicator, _snapshot = await watch(room, await db(seat)(room, "ann"))
    real_receive, real_group_add = layer.receive, layer.group_add
    failures = {"receive": 1, "group_add": 2}
    rejoined = []

    async def receive(channel):
        if failures["receive"]:
            failures["receive"] -= 1
            raise ConnectionError("the layer went away")
        return await real_receive(channel)

    async def group_add(group, channel):
        if failures["group_add"]:
            failures["group_add"] -= 1
            raise ConnectionError("still away")
        rejoined.append(group)
        return await real_group_add(group, channel)

    monkeypatch.setattr(layer, "receive", receive)
    monkeypatch.setattr(layer, "group_add", group_add)
    # The hub's pending receive returns this point; its next receive fails.
    await db(ingest)(training_session, [point(1)])
    assert (await receive_json(communicator))["type"] == "training_metrics"
    await receive_type(communicator, "graph_update")
    closed = await communicator.receive_output(10)
    assert closed == {"type": "websocket.close", "code": CLOSE_SERVICE_RESTART}
    assert sorted(rejoined) == sorted(
        [hub_room_group(room.pk), metric_events.session_group_name(room.training_session_id)]
    )
    assert get_hub().stats.layer_errors == 3


def hub_room_group(room_id) -> str:
    from rooms.events import room_group_name

    return room_group_name(room_id)


async def wait_for_value(read, done, timeout: float = 5.0):
    """Read until ``done(value)`` (the event), within ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await read()
        if done(value):
            return value
        assert loop.time() < deadline, f"still {value!r} after {timeout} s"
        await asyncio.sleep(0.02)


async def test_each_message_is_serialized_once_per_room(room, seat, training_session, monkeypatch):
    ann, bob = await db(seat)(room, "ann"), await db(seat)(room, "bob")
    first, _ = await watch(room, ann)
    second, _ = await watch(room, bob)
    dumps_calls = []
    real_dumps = metric_events._dumps
    monkeypatch.setattr(metric_events, "_dumps", lambda message: dumps_calls.append(1) or real_dumps(message))
    hub = get_hub()
    received = hub.stats.received
    await db(ingest)(training_session, [point(i) for i in range(3)])
    texts_first = [await first.receive_output(3) for _ in range(4)]
    texts_second = [await second.receive_output(3) for _ in range(4)]
    assert texts_first == texts_second
    assert all(isinstance(output["text"], str) for output in texts_first)
    # Three training_metrics (the batch's graph_update is joined from serialized entries), not x2 spectators.
    assert len(dumps_calls) == 3
    assert hub.stats.received == received + 1  # one group message for the whole batch
    assert await first.receive_nothing() and await second.receive_nothing()
    await close_all(first, second)


async def test_two_rooms_of_one_session_share_the_stream_but_not_room_events(make_room, seat, training_session, owner):
    first_room, second_room = await db(make_room)(), await db(make_room)()
    first, _ = await watch(first_room, await db(seat)(first_room, "ann"))
    second, _ = await watch(second_room, await db(seat)(second_room, "bob"))
    hub = get_hub()
    assert hub.local_connections() == 2 and len(hub.session_rooms[training_session.pk]) == 2

    await db(ingest)(training_session, [point(1)])
    for communicator in (first, second):
        assert (await receive_json(communicator))["type"] == "training_metrics"
        assert (await receive_json(communicator))["type"] == "graph_update"

    await db(services.room_close)(room=first_room, actor=owner)
    assert (await receive_json(first))["type"] == "room_closed"
    await expect_closed(first, 4410)
    await first.disconnect()
    assert await second.receive_nothing()
    await db(ingest)(training_session, [point(2)])
    assert (await receive_json(second))["data"]["seq"] == 2
    assert (await receive_json(second))["type"] == "graph_update"
    await second.disconnect()
    # Nobody local is left: the hub has left the room and session groups.
    assert hub.local_connections() == 0 and not hub.rooms and not hub.session_rooms


# --- Speed, buffering -------------------------------------------------------------------------


async def test_rate_limited_spectator_gets_every_point_and_only_the_latest_decision(
    room, seat, training_session, make_token, owner
):
    ann, bob = await db(seat)(room, "ann"), await db(seat)(room, "bob")
    live, _ = await watch(room, ann)
    slow, _ = await watch(room, bob)
    await slow.send_json_to({"type": "set_speed", "max_hz": 2})
    assert await receive_json(slow) == {"type": "speed", "mode": "limited", "max_hz": 2}

    token = await db(make_token)(owner)
    trainer = await ws_open(f"/ws/ingest/{training_session.pk}/", token=token)
    decisions = [{"action_probabilities": {"a": i / 50, "b": 1 - i / 50}, "step": i} for i in range(50)]
    await trainer.send_json_to({"type": "decisions", "decisions": decisions})
    for batch in range(3):
        points = [point(batch * 4 + i) for i in range(4)]
        await trainer.send_json_to({"type": "metrics", "ref": batch, "points": points})
        assert (await receive_json(trainer))["accepted"] == 4

    # Live: every decision, in order, then every point.
    steps = [(await receive_type(live, "bot_decision"))["step"] for _ in range(50)]
    assert steps == list(range(50))
    live_seqs = []
    for _batch in range(3):  # each batch: its points' training_metrics, then its graph_update
        for _ in range(4):
            live_seqs.append((await receive_type(live, "training_metrics"))["data"]["seq"])
        assert len((await receive_type(live, "graph_update"))["graphs"]) == 4  # one reward entry a point
    assert live_seqs == list(range(12))
    assert await live.receive_nothing()

    # Limited: every metric point (and every graph_update), decisions coalesced to the latest.
    seqs, updates, slow_steps = [], 0, []
    while len(seqs) < 12 or updates < 3 or 49 not in slow_steps:
        message = await receive_json(slow, timeout=5)
        if message["type"] == "training_metrics":
            seqs.append(message["data"]["seq"])
        elif message["type"] == "graph_update":
            updates += 1
        else:
            assert message["type"] == "bot_decision", message
            slow_steps.append(message["step"])
    assert seqs == list(range(12))
    assert 1 <= len(slow_steps) <= 2 and slow_steps[-1] == 49
    assert get_hub().stats.coalesced >= 48
    assert await slow.receive_nothing(timeout=0.6)  # a flush period: nothing was held back
    await slow.send_json_to({"type": "set_speed", "mode": "live"})
    assert await receive_json(slow) == {"type": "speed", "mode": "live"}
    await close_all(trainer, live, slow)


async def test_slow_spectator_gets_control_messages_without_waiting_for_the_tick(
    room, seat, training_session, make_token, owner
):
    # At 0.1 Hz a tick is 10 s away; every wait below is bounded by a 3 s timeout.
    ann = await db(seat)(room, "ann")
    slow, _ = await watch(room, ann)
    await slow.send_json_to({"type": "set_speed", "max_hz": 0.1})
    assert (await receive_json(slow))["type"] == "speed"  # the first flush is immediate
    token = await db(make_token)(owner)
    trainer = await ws_open(f"/ws/ingest/{training_session.pk}/", token=token)
    await trainer.send_json_to({"type": "decision", "action_probabilities": [1.0], "step": 1})
    await trainer.send_json_to({"type": "ping", "ref": 1})
    await receive_json(trainer)  # the decision was published before this pong
    assert await slow.receive_nothing(timeout=0.2)  # held for the tick

    await slow.send_json_to({"type": "ping", "t": 1})
    assert await receive_json(slow) == {"type": "pong", "t": 1}  # not held
    assert await slow.receive_nothing(timeout=0.2)  # the decision still is

    await slow.send_json_to({"type": "set_speed", "mode": "live"})
    messages = [await receive_json(slow), await receive_json(slow)]
    assert sorted(message["type"] for message in messages) == ["bot_decision", "speed"]
    await close_all(trainer, slow)


async def test_slow_spectator_is_kicked_at_once(room, seat, owner):
    ann = await db(seat)(room, "ann")
    slow, _ = await watch(room, ann)
    await slow.send_json_to({"type": "set_speed", "max_hz": 0.1})
    assert (await receive_json(slow))["type"] == "speed"
    await db(services.spectator_kick)(spectator=ann.spectator, actor=owner)
    assert (await receive_type(slow, "room_closed"))["reason"] == "kicked"
    await expect_closed(slow, 4403)
    await slow.disconnect()


async def test_stalled_connection_is_closed_with_4408_while_others_get_everything(
    room, seat, training_session, settings
):
    settings.SPECTATOR_MAX_BUFFERED_MESSAGES = 20
    ann = await db(seat)(room, "ann")
    live, _ = await watch(room, ann)
    hub = get_hub()
    unblock, got_close = asyncio.Event(), asyncio.Event()
    sent = []

    async def never_reads(message):
        # A socket whose peer stopped reading: every write waits until the test lets go.
        sent.append(message)
        if message["type"] == "websocket.close":
            got_close.set()
        await unblock.wait()

    stalled = await hub.attach(
        never_reads,
        room_id=room.pk,
        training_session_id=training_session.pk,
        spectator_id=-1,
        is_manager=False,
    )
    try:
        for batch in range(6):  # 36 messages; at most 6 in flight at once for the live socket
            await db(ingest)(training_session, [point(batch * 5 + i) for i in range(5)])
            for _ in range(5):
                assert (await receive_json(live))["type"] == "training_metrics"
            assert (await receive_json(live))["type"] == "graph_update"
        assert hub.stats.too_slow_closed == 1
        assert len(stalled.fifo) <= 20
        unblock.set()
        await asyncio.wait_for(got_close.wait(), 3)
        assert [json.loads(m["text"])["type"] for m in sent[:-1]] == ["training_metrics", "error"]
        assert json.loads(sent[-2]["text"])["code"] == "too_slow"
        assert sent[-1] == {"type": "websocket.close", "code": CLOSE_TOO_SLOW}
        assert hub.stats.dropped > 0
    finally:
        await hub.detach(stalled)
    await assert_usable(live)
    await live.disconnect()


async def test_fell_behind_connection_gets_too_slow_then_4408(room, seat, training_session, settings):
    # The same through the consumer: a burst bigger than the buffer.
    settings.SPECTATOR_MAX_BUFFERED_MESSAGES = 10
    ann = await db(seat)(room, "ann")
    communicator, _ = await watch(room, ann)
    await db(ingest)(training_session, [point(i) for i in range(12)])  # 13 messages in one dispatch
    error = await receive_json(communicator)
    assert (error["type"], error["code"]) == ("error", "too_slow")
    await expect_closed(communicator, CLOSE_TOO_SLOW)
    await communicator.disconnect()


# --- Presence ----------------------------------------------------------------------------------


async def test_disconnect_frees_the_seat(room, seat):
    ann = await db(seat)(room, "ann")
    communicator, _ = await watch(room, ann)
    assert (await db(room_get_with_counts)(room)).present_count == 1
    await communicator.disconnect()
    spectator = await db(Spectator.objects.get)(pk=ann.spectator.pk)
    assert spectator.left_at is not None and spectator.left_reason == "left"
    assert (await db(room_get_with_counts)(room)).present_count == 0


async def test_second_tab_keeps_the_seat_until_the_last_socket_closes(room, seat):
    ann = await db(seat)(room, "ann")
    first, _ = await watch(room, ann)
    second, _ = await watch(room, ann)
    await first.disconnect()
    assert (await db(Spectator.objects.get)(pk=ann.spectator.pk)).left_at is None
    await assert_usable(second)
    await second.disconnect()
    assert (await db(Spectator.objects.get)(pk=ann.spectator.pk)).left_at is not None


async def test_reconnect_after_leaving_takes_a_seat_again(room, seat):
    ann = await db(seat)(room, "ann")
    communicator, _ = await watch(room, ann)
    await communicator.disconnect()
    communicator, snapshot = await watch(room, ann)
    assert snapshot["spectator_count"] == 1
    assert (await db(room_get_with_counts)(room)).present_count == 1
    await communicator.disconnect()


# --- Room events: close, expiry, moderation ----------------------------------------------------


@pytest.mark.parametrize("how", ["api", "service", "expiry"])
async def test_room_end_sends_room_closed_then_4410_to_everyone(room, seat, owner, api_client, how):
    ann, bob = await db(seat)(room, "ann"), await db(seat)(room, "bob")
    first, _ = await watch(room, ann)
    second, _ = await watch(room, bob)
    if how == "api":
        response = await db(api_client(owner).post)(f"/api/v1/rooms/{room.code}/close/", {}, format="json")
        assert response.status_code == 200, response.content
    elif how == "service":
        await db(services.room_close)(room=room, actor=owner)
    else:
        await db(Room.objects.filter(pk=room.pk).update)(expires_at=timezone.now() - timedelta(seconds=1))
        assert await db(services.rooms_expire)() == 1
    reason = "expired" if how == "expiry" else "closed"
    for communicator in (first, second):
        assert await receive_json(communicator) == {"type": "room_closed", "room_code": room.code, "reason": reason}
        await expect_closed(communicator, 4410)
    await close_all(first, second)


@pytest.mark.parametrize(("action", "reason"), [("kick", "kicked"), ("ban", "banned")])
async def test_kick_and_ban_from_the_managers_socket_close_only_the_targets_socket(room, seat, owner, action, reason):
    ann, bob = await db(seat)(room, "ann"), await db(seat)(room, "bob")
    target, _ = await watch(room, ann)
    bystander, _ = await watch(room, bob)
    manager, _ = await watch_as(room, owner)
    await receive_type(target, "spectator_list", skip=())  # the owner's seat
    await receive_type(bystander, "spectator_list", skip=())

    await manager.send_json_to({"type": action, "spectator_id": ann.spectator.pk, "reason": "spam"})
    assert await receive_type(target, "room_closed") == {
        "type": "room_closed",
        "reason": reason,
        "spectator_id": ann.spectator.pk,
    }
    await expect_closed(target, 4403)
    listed = await receive_type(bystander, "spectator_list", skip=())
    assert ann.spectator.pk not in [entry["spectator_id"] for entry in listed["spectators"]]
    await receive_type(manager, "spectator_list", skip=())
    await assert_usable(bystander)
    await assert_usable(manager)
    assert (await db(Spectator.objects.get)(pk=ann.spectator.pk)).left_reason == reason
    await close_all(target, bystander, manager)
    if action == "ban":
        ban = await db(Ban.objects.get)(room=room, user__username="ann")
        assert ban.reason == "spam" and ban.lifted_at is None
        refused = await ws_open(room_path(room.code, ann.ticket))
        await expect_refused(refused, "banned", 4403)


async def test_kick_through_the_api_closes_the_targets_socket(room, seat, owner, api_client):
    ann, bob = await db(seat)(room, "ann"), await db(seat)(room, "bob")
    target, _ = await watch(room, ann)
    bystander, _ = await watch(room, bob)
    response = await db(api_client(owner).post)(f"/api/v1/rooms/{room.code}/spectators/{ann.spectator.pk}/kick/")
    assert response.status_code == 200, response.content
    assert (await receive_type(target, "room_closed"))["reason"] == "kicked"
    await expect_closed(target, 4403)
    await receive_type(bystander, "spectator_list", skip=())
    await assert_usable(bystander)
    await close_all(target, bystander)


async def test_join_requests_reach_managers_only_and_are_decided_over_the_socket(make_room, make_user, seat, owner):
    bob_user = await db(make_user)("bob")
    gated = await db(make_room)(require_approval=True, allowed_users=["bob"])
    bob_result = await db(room_join)(room=gated, visitor=Visitor(user=bob_user))
    bob_ticket = ticket_issue(room_id=gated.pk, spectator_id=bob_result.spectator.pk)
    manager, snapshot = await watch_as(gated, owner)
    assert snapshot["pending_requests"] == []
    viewer, _ = await watch(gated, Seat(bob_result.spectator, bob_ticket))
    assert await manager.receive_nothing()

    carol = await db(make_user)("carol")
    pending = await db(room_join)(room=gated, visitor=Visitor(user=carol), message="hi")
    assert pending.status == "pending_approval"
    announced = await receive_json(manager)
    assert announced["type"] == "join_request"
    assert (announced["request"]["request_id"], announced["request"]["username"], announced["request"]["message"]) == (
        pending.join_request.pk,
        "carol",
        "hi",
    )
    assert await viewer.receive_nothing()

    await manager.send_json_to({"type": "approve", "request_id": pending.join_request.pk})
    decided = await receive_json(manager)
    assert (decided["type"], decided["request"]["status"]) == ("join_request_decided", "approved")
    assert await viewer.receive_nothing()
    joined = await db(room_join)(room=gated, visitor=Visitor(user=carol))
    assert joined.status == "approved"
    assert (await receive_json(viewer))["count"] == 3

    dave = await db(make_user)("dave")
    pending = await db(room_join)(room=gated, visitor=Visitor(user=dave))
    await receive_type(manager, "spectator_list")  # Carol's seat
    assert (await receive_json(manager))["type"] == "join_request"
    await manager.send_json_to({"type": "deny", "request_id": pending.join_request.pk})
    decided = await receive_json(manager)
    assert decided["request"]["status"] == "denied"
    assert (await db(JoinRequest.objects.get)(pk=pending.join_request.pk)).status == "denied"

    # Deciding it again is a bad request, not a crash.
    await manager.send_json_to({"type": "approve", "request_id": pending.join_request.pk})
    error = await receive_json(manager)
    assert (error["type"], error["code"]) == ("error", "bad_request")
    await assert_usable(manager)
    assert await viewer.receive_nothing()
    await close_all(manager, viewer)


async def test_moderation_by_a_non_manager_is_forbidden(room, seat):
    ann, bob = await db(seat)(room, "ann"), await db(seat)(room, "bob")
    communicator, _ = await watch(room, ann)
    for message in (
        {"type": "kick", "spectator_id": bob.spectator.pk},
        {"type": "ban", "spectator_id": bob.spectator.pk},
        {"type": "approve", "request_id": 1},
        {"type": "deny", "request_id": 1},
    ):
        await communicator.send_json_to(message)
        error = await receive_json(communicator)
        assert (error["type"], error["code"]) == ("error", "forbidden"), error
    assert (await db(Spectator.objects.get)(pk=bob.spectator.pk)).left_at is None
    await assert_usable(communicator)
    await communicator.disconnect()


@pytest.mark.parametrize(
    "message",
    [
        {"type": "kick", "spectator_id": 999_999},
        {"type": "kick"},
        {"type": "kick", "spectator_id": "abc"},
        {"type": "ban", "spectator_id": [1]},
        {"type": "approve", "request_id": 999_999},
        {"type": "deny"},
    ],
    ids=["unknown-spectator", "missing-spectator", "text-spectator", "list-spectator", "unknown-request", "missing"],
)
async def test_bad_moderation_from_a_manager_is_an_error_not_a_crash(room, owner, message):
    manager, _ = await watch_as(room, owner)
    await manager.send_json_to(message)
    error = await receive_json(manager)
    assert (error["type"], error["code"]) == ("error", "bad_request"), error
    await assert_usable(manager)
    await manager.disconnect()


async def test_manager_cannot_kick_themselves(room, owner):
    manager, snapshot = await watch_as(room, owner)
    await manager.send_json_to({"type": "kick", "spectator_id": snapshot["viewer"]["spectator_id"]})
    error = await receive_json(manager)
    assert (error["type"], error["code"]) == ("error", "bad_request")
    await assert_usable(manager)
    await manager.disconnect()


# --- Control messages --------------------------------------------------------------------------


async def test_ping_pong(room, seat):
    communicator, _ = await watch(room, await db(seat)(room, "ann"))
    await communicator.send_json_to({"type": "ping", "t": 12.5})
    assert await receive_json(communicator) == {"type": "pong", "t": 12.5}
    await communicator.send_json_to({"type": "ping"})
    assert await receive_json(communicator) == {"type": "pong", "t": None}
    await communicator.disconnect()


@pytest.mark.parametrize(
    ("text", "binary", "code"),
    [
        ("{not json", None, "bad_request"),
        ("[1, 2]", None, "bad_request"),
        ('"ping"', None, "bad_request"),
        ('{"type": 5}', None, "bad_request"),
        ("{}", None, "bad_request"),
        ('{"type": "launch_missiles"}', None, "unknown_type"),
        (json.dumps({"type": "ping", "pad": "x" * 5000}), None, "bad_request"),
        (None, b"\x00\x01binary", "bad_request"),
    ],
    ids=["malformed", "array", "string", "type-not-string", "no-type", "unknown-type", "oversized", "binary"],
)
async def test_bad_client_message_gets_an_error_and_the_socket_stays_usable(room, seat, text, binary, code):
    communicator, _ = await watch(room, await db(seat)(room, "ann"))
    await communicator.send_to(text_data=text, bytes_data=binary)
    error = await receive_json(communicator)
    assert (error["type"], error["code"]) == ("error", code), error
    assert error["message"]
    await assert_usable(communicator)
    await communicator.disconnect()


async def test_flood_of_messages_closes_4429(room, seat):
    communicator, _ = await watch(room, await db(seat)(room, "ann"))
    for index in range(40):
        await communicator.send_json_to({"type": "ping", "t": index})
    outputs = []
    while True:
        output = await communicator.receive_output(3)
        outputs.append(output)
        if output["type"] == "websocket.close":
            break
    assert outputs[-1] == {"type": "websocket.close", "code": 4429}
    error = json.loads(outputs[-2]["text"])
    assert (error["type"], error["code"]) == ("error", "rate_limited")
    pongs = [json.loads(output["text"]) for output in outputs[:-2]]
    assert pongs == [{"type": "pong", "t": index} for index in range(len(pongs))]
    assert 1 <= len(pongs) < 40
    assert await communicator.receive_nothing()  # nothing after the close
    await communicator.disconnect()


@pytest.mark.parametrize(
    "message",
    [
        {"type": "set_speed"},
        {"type": "set_speed", "max_hz": 0},
        {"type": "set_speed", "max_hz": 0.05},
        {"type": "set_speed", "max_hz": 61},
        {"type": "set_speed", "max_hz": "fast"},
        {"type": "set_speed", "max_hz": True},
        {"type": "set_speed", "max_hz": None},
        {"type": "set_speed", "mode": "turbo"},
    ],
)
async def test_set_speed_invalid_names_max_hz(room, seat, message):
    communicator, _ = await watch(room, await db(seat)(room, "ann"))
    await communicator.send_json_to(message)
    error = await receive_json(communicator)
    assert (error["type"], error["code"], error["field"]) == ("error", "bad_request", "max_hz"), error
    assert "max_hz" in error["message"]
    await assert_usable(communicator)
    await communicator.disconnect()


@pytest.mark.parametrize("max_hz", [0.1, 1, 60, 12.5])
async def test_set_speed_valid(room, seat, max_hz):
    communicator, _ = await watch(room, await db(seat)(room, "ann"))
    await communicator.send_json_to({"type": "set_speed", "max_hz": max_hz})
    assert await receive_json(communicator) == {"type": "speed", "mode": "limited", "max_hz": max_hz}
    await communicator.disconnect()


async def test_nothing_stored_by_spectators(room, seat):
    # The spectator socket is read-only towards the history.
    communicator, _ = await watch(room, await db(seat)(room, "ann"))
    await communicator.send_json_to({"type": "metrics", "points": [point(1)]})
    assert (await receive_json(communicator))["code"] == "unknown_type"
    assert await db(MetricPoint.objects.count)() == 0
    await communicator.disconnect()
