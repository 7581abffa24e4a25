"""Recording settings (``PATCH /api/v1/sessions/<id>/``), recorded episodes (list, detail,
delete) and their JSON export: content round trip, streaming, and who may read them."""

from __future__ import annotations

import base64
import json

import pytest
from channels.db import database_sync_to_async
from django.test import AsyncClient

from metrics.ingest import decisions_clean, metric_point_clean
from metrics.models import RecordedEpisode, RecordingPolicy
from rooms.access import Visitor
from rooms.services import anon_key_for, room_join, room_leave
from tests.api_errors import assert_api_error
from tests.support.live import close_thread_connections, frame_bytes, receive_json, ws_open

T0 = 1_700_000_000.0
ACTIONS = ["left", "right", "noop"]


def png(tag: int) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + bytes([tag]) * 200 + bytes(range(256))


def raw_decision(episode: int, step: int) -> dict:
    p = (step % 5) / 10
    return {
        "action_probabilities": dict(zip(ACTIONS, [p, 0.9 - p, 0.1], strict=True)),
        "q_values": [1e308, -1e-308, 0.1 + 0.2 + step],
        "state_values": -1.5 * step,
        "selected_action": ACTIONS[step % 3] if step % 4 else step % 3,
        "episode": episode,
        "step": step,
        "timestamp": T0 + episode * 100 + step * 0.05,
    }


@pytest.fixture
def trainer(api_client, owner, make_token):
    return api_client(token=make_token(owner))


@pytest.fixture
def recorded(trainer, training_session):
    """Episodes 1-3 sent through the HTTP ingest API: decisions, a frame every 3rd step, rewards."""
    base = f"/api/v1/sessions/{training_session.pk}"
    sent = {}
    for episode in (1, 2, 3):
        decisions = [raw_decision(episode, step) for step in range(8)]
        frames = {step: png(episode * 10 + step) for step in range(0, 8, 3)}
        for step, image in frames.items():
            body = frame_bytes({"mime": "image/png", "episode": episode, "step": step, "timestamp": T0 + step}, image)
            response = trainer.post(f"{base}/frames/", body, content_type="application/octet-stream")
            assert response.status_code == 202, response.content
        point = {"stream": "s", "seq": episode, "timestamp": T0 + episode, "episode": episode}
        point["current_reward"] = {1: 5.0, 2: 50.0, 3: -2.5}[episode]
        response = trainer.post(f"{base}/ingest/", {"points": [point], "decisions": decisions}, format="json")
        assert response.status_code == 200, response.content
        sent[episode] = {"decisions": decisions_clean(decisions), "frames": frames, "point": point}
    return sent


def url(session_id: str, rest: str = "") -> str:
    return f"/api/v1/sessions/{session_id}/{rest}"


def download(client, session_id, episode, **params):
    response = client.get(url(session_id, f"recordings/{episode}.json"), params)
    assert response.status_code == 200, response.content if not response.streaming else ""
    assert response.streaming and response["Content-Type"] == "application/json"
    return response, json.loads(b"".join(response.streaming_content))


# --- Settings --------------------------------------------------------------------------------------


def test_detail_shows_the_default_settings_and_usage(api_client, owner, training_session, settings):
    body = api_client(owner).get(url(training_session.pk)).json()
    assert body["recording"] == {
        "mode": "all",
        "every_n": 10,
        "keep": 5,
        "max_bytes": settings.SPECTATOR_RECORDING_MAX_BYTES,
        "max_age_hours": settings.SPECTATOR_RECORDING_MAX_AGE_HOURS,
        "episodes": 0,
        "bytes": 0,
    }


def test_patch_changes_only_the_settings_given(api_client, owner, training_session, recorded):
    client = api_client(owner)
    response = client.patch(url(training_session.pk), {"recording": {"mode": "every_nth", "every_n": 4}}, format="json")
    assert response.status_code == 200, response.content
    recording = response.json()["recording"]
    assert (recording["mode"], recording["every_n"], recording["keep"]) == ("every_nth", 4, 5)
    assert recording["episodes"] == 3 and recording["bytes"] > 0
    response = client.patch(url(training_session.pk), {"recording": {"max_age_hours": 1.5}}, format="json")
    assert response.json()["recording"]["mode"] == "every_nth"
    policy = RecordingPolicy.objects.get(pk=training_session.pk)
    assert (policy.mode, policy.every_n, policy.max_age_hours) == ("every_nth", 4, 1.5)
    assert client.get(url(training_session.pk)).json()["recording"]["max_age_hours"] == 1.5


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"recording": {"mode": "sometimes"}}, "recording.mode"),
        ({"recording": {"every_n": 0}}, "recording.every_n"),
        ({"recording": {"keep": 1001}}, "recording.keep"),
        ({"recording": {"max_bytes": -1}}, "recording.max_bytes"),
        ({"recording": {"max_age_hours": 0}}, "recording.max_age_hours"),
        ({"recording": {"max_age_hours": "soon"}}, "recording.max_age_hours"),
        ({"recording": {}}, "recording"),
        ({"recording": "all"}, "recording.non_field_errors"),
        ({}, "recording"),
    ],
)
def test_bad_settings_name_the_field(api_client, owner, training_session, body, field):
    response = api_client(owner).patch(url(training_session.pk), body, format="json")
    assert_api_error(response, 400, "validation_error", field)
    assert not RecordingPolicy.objects.exists()


def test_only_the_owner_and_staff_change_settings(api_client, make_user, training_session, make_room):
    viewer = make_user("viewer")
    room_join(room=make_room(), visitor=Visitor(user=viewer))
    body = {"recording": {"mode": "off"}}
    for client in (api_client(make_user("stranger")), api_client(viewer)):
        assert_api_error(client.patch(url(training_session.pk), body, format="json"), 404, "not_found")
    assert (
        api_client(make_user("staffer", staff=True))
        .patch(url(training_session.pk), body, format="json")
        .json()["recording"]["mode"]
        == "off"
    )


# --- Listing ---------------------------------------------------------------------------------------


def test_list_shows_each_recorded_episode(api_client, owner, training_session, recorded):
    body = api_client(owner).get(url(training_session.pk, "recordings/")).json()
    assert body["count"] == 3
    assert [row["episode"] for row in body["results"]] == [3, 2, 1]
    first = body["results"][2]
    assert (first["decisions"], first["frames"], first["steps"], first["first_step"], first["last_step"]) == (
        8,
        3,
        8,
        0,
        7,
    )
    assert first["reward"] == 5.0 and first["started_at"] == T0 and first["ended_at"] == T0 + 100 + 7 * 0.05
    assert first["bytes"] == RecordedEpisode.objects.get(episode=1).bytes > 0
    assert first["recorded_at"] and first["updated_at"]


def test_list_orders_and_pages(api_client, owner, training_session, recorded):
    client = api_client(owner)
    by_reward = client.get(url(training_session.pk, "recordings/"), {"ordering": "-reward"}).json()
    assert [row["episode"] for row in by_reward["results"]] == [2, 1, 3]
    page = client.get(url(training_session.pk, "recordings/"), {"ordering": "episode", "limit": 2, "offset": 1}).json()
    assert [row["episode"] for row in page["results"]] == [2, 3] and page["count"] == 3 and page["previous"]
    assert_api_error(
        client.get(url(training_session.pk, "recordings/"), {"ordering": "size"}), 400, "validation_error", "ordering"
    )


def test_detail_and_delete(api_client, owner, training_session, recorded):
    client = api_client(owner)
    assert client.get(url(training_session.pk, "recordings/2/")).json()["reward"] == 50.0
    assert client.delete(url(training_session.pk, "recordings/2/")).status_code == 204
    assert_api_error(client.get(url(training_session.pk, "recordings/2/")), 404, "not_found")
    assert_api_error(client.delete(url(training_session.pk, "recordings/2/")), 404, "not_found")
    assert_api_error(client.get(url(training_session.pk, "recordings/9.json")), 404, "not_found")
    assert [row["episode"] for row in client.get(url(training_session.pk, "recordings/")).json()["results"]] == [3, 1]


# --- Who may read --------------------------------------------------------------------------------------

READ_PATHS = ("recordings/", "recordings/1/", "recordings/1.json")


def test_strangers_anonymous_and_unknown_sessions_get_404(api_client, make_user, training_session, recorded):
    stranger = api_client(make_user("stranger"))
    for path in READ_PATHS:
        assert_api_error(stranger.get(url(training_session.pk, path)), 404, "not_found")
        assert_api_error(api_client().get(url(training_session.pk, path)), 404, "not_found")
        assert_api_error(api_client(training_session.owner).get(url("no-such-run", path)), 404, "not_found")


def test_admitted_spectators_read_until_they_leave_but_never_delete(
    api_client, make_user, make_room, training_session, recorded
):
    viewer = make_user("viewer")
    spectator = room_join(room=make_room(), visitor=Visitor(user=viewer)).spectator
    client = api_client(viewer)
    for path in READ_PATHS:
        assert client.get(url(training_session.pk, path)).status_code == 200, path
    assert_api_error(client.delete(url(training_session.pk, "recordings/1/")), 404, "not_found")
    room_leave(spectator=spectator)
    for path in READ_PATHS:
        assert_api_error(client.get(url(training_session.pk, path)), 404, "not_found")


def test_anonymous_spectators_with_their_visitor_token_and_staff(
    api_client, make_user, make_room, training_session, recorded
):
    room_join(room=make_room(), visitor=Visitor(anon_key=anon_key_for("token-7")))
    for path in READ_PATHS:
        assert api_client().get(url(training_session.pk, path), {"visitor_token": "token-7"}).status_code == 200
        assert_api_error(api_client().get(url(training_session.pk, path), {"visitor_token": "nope"}), 404, "not_found")
        assert (
            api_client(make_user(f"staff-{path.count('/')}-{len(path)}", staff=True))
            .get(url(training_session.pk, path))
            .status_code
            == 200
        )


# --- Export ------------------------------------------------------------------------------------------


def test_export_round_trips_decisions_frames_and_metrics(api_client, owner, training_session, recorded):
    response, body = download(api_client(owner), training_session.pk, 1)
    assert response["Content-Disposition"] == 'attachment; filename="cartpole-dqn-episode-1.json"'
    assert response["Cache-Control"] == "private, no-store"
    assert body["format"] == "spectator.recorded_episode/1"
    assert (body["training_session_id"], body["episode"]) == ("cartpole-dqn", 1)
    assert body["recording"]["decisions"] == 8 and body["recording"]["reward"] == 5.0
    assert body["metrics"]["current_reward"] == 5.0 and body["metrics"]["episode"] == 1
    sent = recorded[1]
    assert body["decisions"] == sent["decisions"]
    # Floats stay floats (1e308 is not an integer), integers stay integers.
    assert all(type(d["q_values"][0]) is float and type(d["step"]) is int for d in body["decisions"])
    assert [(f["step"], f["mime"], f["size"]) for f in body["frames"]] == [
        (step, "image/png", len(image)) for step, image in sent["frames"].items()
    ]
    assert [base64.b64decode(f["data"]) for f in body["frames"]] == list(sent["frames"].values())
    assert [f["timestamp"] for f in body["frames"]] == [T0 + step for step in sent["frames"]]


def test_export_without_images(api_client, owner, training_session, recorded):
    _response, body = download(api_client(owner), training_session.pk, 3, frames="none")
    assert [f["step"] for f in body["frames"]] == [0, 3, 6]
    assert all("data" not in f and f["size"] > 0 for f in body["frames"])
    assert len(body["decisions"]) == 8
    response = api_client(owner).get(url(training_session.pk, "recordings/3.json"), {"frames": "url"})
    assert_api_error(response, 400, "validation_error", "frames")


def test_export_of_an_episode_without_frames_or_metrics(api_client, owner, training_session):
    from metrics.recording_services import recording_append

    recording_append(training_session_id=training_session.pk, decisions=decisions_clean([raw_decision(9, 0)]))
    _response, body = download(api_client(owner), training_session.pk, 9)
    assert body["frames"] == [] and body["metrics"] is None and len(body["decisions"]) == 1


@pytest.mark.django_db(transaction=True)
async def test_asgi_export_streams_with_an_async_iterator(owner, training_session):
    from asgiref.sync import sync_to_async

    from metrics.recording_services import recording_append

    decisions = decisions_clean([raw_decision(4, step) for step in range(50)])
    await sync_to_async(recording_append)(training_session_id=training_session.pk, decisions=decisions)
    client = AsyncClient()
    await sync_to_async(client.force_login)(owner)
    response = await client.get(url(training_session.pk, "recordings/4.json"))
    assert response.status_code == 200 and response.streaming and response.is_async
    body = json.loads(b"".join([chunk async for chunk in response.streaming_content]))
    assert [d["step"] for d in body["decisions"]] == list(range(50))


# --- What ingest records -------------------------------------------------------------------------------


def test_point_decisions_and_rewards_from_the_ingest_api_are_recorded(trainer, training_session):
    point = {"stream": "s", "seq": 1, "timestamp": T0, "episode": 6, "current_reward": 7.0}
    point["action_probabilities"] = [0.5, 0.5]
    response = trainer.post(url(training_session.pk, "ingest/"), {"points": [point]}, format="json")
    assert response.status_code == 200
    row = RecordedEpisode.objects.get(episode=6)
    assert (row.decisions, row.reward) == (1, 7.0)
    # Resent: nothing new is recorded.
    assert (
        trainer.post(url(training_session.pk, "ingest/"), {"points": [point]}, format="json").json()["duplicates"] == 1
    )
    assert RecordedEpisode.objects.get(episode=6).decisions == 1
    assert metric_point_clean(point)["decision"]["action_probabilities"] == [0.5, 0.5]


@pytest.mark.django_db(transaction=True)
async def test_the_ingest_socket_records_decisions_and_frames(owner, training_session, make_token):
    token = await database_sync_to_async(make_token)(owner)
    socket = await ws_open(f"/ws/ingest/{training_session.pk}/", token=token)
    try:
        await socket.send_json_to({"type": "decisions", "decisions": [raw_decision(5, 0), raw_decision(5, 1)]})
        await socket.send_json_to({"type": "decision", **raw_decision(5, 2)})
        await socket.send_to(bytes_data=frame_bytes({"mime": "image/png", "episode": 5, "step": 1}, png(3)))
        # Messages are handled in order: once the pong is back, everything before it is recorded.
        await socket.send_json_to({"type": "ping", "ref": "done"})
        assert (await receive_json(socket))["type"] == "pong"
    finally:
        await socket.disconnect()
        await close_thread_connections()
    row = await database_sync_to_async(RecordedEpisode.objects.get)(episode=5)
    assert (row.decisions, row.frames, row.first_step, row.last_step) == (3, 1, 0, 2)
