"""Trainer endpoints of a training session: metric ingest, frames, status; and the metric history."""

import json
import struct

import pytest

from metrics.models import MetricPoint, TrainingSession
from metrics.services import training_session_create
from tests.api_errors import assert_api_error

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def url(session, suffix):
    return f"/api/v1/sessions/{getattr(session, 'id', session)}/{suffix}/"


def point(seq, **fields):
    return {"stream": "trainer-1", "seq": seq, "timestamp": 1700000000.0 + seq, "episode": seq, **fields}


def frame(header, image=PNG) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack(">I", len(raw)) + raw + image


@pytest.fixture
def stranger(make_user):
    return make_user("stranger")


@pytest.fixture
def owner_client(api_client, owner):
    return api_client(owner)


# --- Metric ingest ------------------------------------------------------------------------


def test_ingest_stores_points_and_skips_a_resent_batch(owner_client, training_session):
    batch = {"points": [point(1, current_reward=1.5, extra={"entropy": 0.3}), point(2)]}

    first = owner_client.post(url(training_session, "ingest"), batch, format="json")
    again = owner_client.post(url(training_session, "ingest"), batch, format="json")

    assert first.status_code == 200, first.json()
    assert first.json() == {"accepted": 2, "duplicates": 0, "last_seq": 2, "decisions": 0}
    assert again.json() == {"accepted": 0, "duplicates": 2, "last_seq": 2, "decisions": 0}
    assert MetricPoint.objects.filter(training_session=training_session).count() == 2


def test_ingest_takes_a_default_stream_and_decisions(owner_client, training_session):
    body = {
        "stream": "default-stream",
        "points": [{"seq": 1, "timestamp": 1.0, "episode": 1}],
        "decisions": [{"action_probabilities": [0.25, 0.75], "selected_action": 1}],
    }

    response = owner_client.post(url(training_session, "ingest"), body, format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["accepted"] == 1
    assert response.json()["decisions"] == 1
    assert MetricPoint.objects.get().stream == "default-stream"


def test_ingest_of_nothing(owner_client, training_session):
    response = owner_client.post(url(training_session, "ingest"), {}, format="json")

    assert response.json() == {"accepted": 0, "duplicates": 0, "last_seq": None, "decisions": 0}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([point(1)], "body"),
        ({"points": "lots"}, "points"),
        ({"points": [point(1), "nope"]}, "points.1"),
        ({"points": [point(1, win_rate=2)]}, "points.0.win_rate"),
        ({"points": [point(1, mystery=1)]}, "points.0.mystery"),
        ({"points": [{"seq": 1, "timestamp": 1.0, "episode": 1}]}, "points.0.stream"),
        ({"points": [point(1, extra={"bad key!": 1})]}, "points.0.extra"),
        ({"decisions": [{"selected_action": 1}]}, "decisions.0.action_probabilities"),
        ({"decisions": [{"action_probabilities": [0.5, 0.2]}]}, "decisions.0.action_probabilities"),
    ],
)
def test_ingest_refusals_name_the_field(owner_client, training_session, body, field):
    response = owner_client.post(url(training_session, "ingest"), body, format="json")

    assert_api_error(response, 400, "validation_error", field)
    assert not MetricPoint.objects.exists()


def test_ingest_into_someone_elses_session_looks_missing(api_client, stranger, training_session):
    body = {"points": [point(1)]}

    assert_api_error(api_client(stranger).post(url(training_session, "ingest"), body, format="json"), 404, "not_found")
    assert_api_error(api_client(stranger).post(url("no-such-run", "ingest"), body, format="json"), 404, "not_found")
    assert_api_error(api_client().post(url(training_session, "ingest"), body, format="json"), 401, "not_authenticated")
    assert not MetricPoint.objects.exists()


@pytest.mark.parametrize("status", ["closed", "completed"])
def test_ingest_into_an_ended_session(owner_client, training_session, status):
    TrainingSession.objects.filter(pk=training_session.pk).update(status=status)

    response = owner_client.post(url(training_session, "ingest"), {"points": [point(1)]}, format="json")

    assert_api_error(response, 400, "validation_error", "training_session_id")


# --- Frames ---------------------------------------------------------------------------------


def test_frame_is_accepted(owner_client, training_session):
    response = owner_client.post(
        url(training_session, "frames"),
        frame({"mime": "image/png", "episode": 3, "step": 7}),
        content_type="application/octet-stream",
    )

    assert response.status_code == 202, response.json()
    assert response.json() == {"accepted": 1}


@pytest.mark.parametrize(
    ("message", "field"),
    [
        (b"\x00\x00", "frame"),
        (struct.pack(">I", 999) + b"{}", "frame.header"),
        (struct.pack(">I", 2) + b"{]" + PNG, "frame.header"),
        (frame({"mime": "image/gif"}), "frame.mime"),
        (frame({"mime": "image/png"}, image=b""), "frame.image"),
        (frame({"mime": "image/jpeg"}), "frame.image"),
        (frame({"mime": "image/png", "type": "video"}), "frame.type"),
        (frame({"mime": "image/png", "episode": -1}), "frame.episode"),
    ],
)
def test_bad_frames_name_the_field(owner_client, training_session, message, field):
    response = owner_client.post(url(training_session, "frames"), message, content_type="application/octet-stream")

    assert_api_error(response, 400, "validation_error", field)


def test_oversized_frame(owner_client, training_session, settings):
    settings.SPECTATOR_MAX_FRAME_BYTES = 1024

    response = owner_client.post(
        url(training_session, "frames"),
        frame({"mime": "image/png"}, image=PNG + b"\x00" * 8192),
        content_type="application/octet-stream",
    )

    assert_api_error(response, 400, "validation_error", "frame.image")


def test_frame_as_json_is_refused(owner_client, training_session):
    response = owner_client.post(url(training_session, "frames"), {"mime": "image/png"}, format="json")

    assert_api_error(response, 415, "unsupported_media_type")


def test_frames_refused_to_others_and_ended_sessions(api_client, owner_client, stranger, training_session):
    message = frame({"mime": "image/png"})

    for client, status, error in ((api_client(stranger), 404, "not_found"), (api_client(), 401, "not_authenticated")):
        response = client.post(url(training_session, "frames"), message, content_type="application/octet-stream")
        assert_api_error(response, status, error)
    TrainingSession.objects.filter(pk=training_session.pk).update(status="closed")
    response = owner_client.post(url(training_session, "frames"), message, content_type="application/octet-stream")
    assert_api_error(response, 400, "validation_error", "training_session_id")


# --- Status ---------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["paused", "running", "completed"])
def test_set_status(owner_client, training_session, status):
    response = owner_client.post(url(training_session, "status"), {"status": status, "message": "hi"}, format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["status"] == status
    assert TrainingSession.objects.get(pk=training_session.pk).status == status


@pytest.mark.parametrize(
    ("body", "field"),
    [({}, "status"), ({"status": "closed"}, "status"), ({"status": "running", "message": "m" * 501}, "message")],
)
def test_bad_status(owner_client, training_session, body, field):
    assert_api_error(
        owner_client.post(url(training_session, "status"), body, format="json"), 400, "validation_error", field
    )


def test_closed_session_only_completes(owner_client, training_session):
    TrainingSession.objects.filter(pk=training_session.pk).update(status="closed")

    response = owner_client.post(url(training_session, "status"), {"status": "running"}, format="json")

    assert_api_error(response, 400, "validation_error", "status")


def test_status_refused_to_others(api_client, stranger, training_session):
    body = {"status": "paused"}

    assert_api_error(api_client(stranger).post(url(training_session, "status"), body, format="json"), 404, "not_found")
    assert_api_error(api_client().post(url(training_session, "status"), body, format="json"), 401, "not_authenticated")
    assert TrainingSession.objects.get(pk=training_session.pk).status == "running"


# --- History --------------------------------------------------------------------------------


@pytest.fixture
def stored(owner_client, training_session):
    batch = {"points": [point(seq, current_reward=float(seq)) for seq in range(1, 6)]}
    assert owner_client.post(url(training_session, "ingest"), batch, format="json").status_code == 200
    return list(MetricPoint.objects.order_by("id").values_list("id", flat=True))


def test_owner_reads_history_oldest_first(owner_client, training_session, stored):
    response = owner_client.get(url(training_session, "metrics"))

    assert response.status_code == 200, response.json()
    body = response.json()
    assert [item["id"] for item in body] == stored
    assert [item["data"]["seq"] for item in body] == [1, 2, 3, 4, 5]
    assert body[0]["data"]["current_reward"] == 1.0
    assert body[0]["data"]["stream"] == "trainer-1"


def test_history_after_id_and_limit(owner_client, training_session, stored):
    response = owner_client.get(url(training_session, "metrics") + f"?after_id={stored[1]}&limit=2")

    assert [item["id"] for item in response.json()] == stored[2:4]


def test_admitted_spectators_read_history(api_client, make_room, training_session, stranger, stored):
    room = make_room()
    anonymous = api_client().post(f"/api/v1/rooms/{room.code}/join/", {}, format="json").json()
    api_client(stranger).post(f"/api/v1/rooms/{room.code}/join/", {}, format="json")

    by_token = api_client().get(url(training_session, "metrics") + f"?visitor_token={anonymous['visitor_token']}")
    signed_in = api_client(stranger).get(url(training_session, "metrics"))

    assert by_token.status_code == 200, by_token.json()
    assert len(by_token.json()) == 5
    assert signed_in.status_code == 200, signed_in.json()


def test_history_looks_missing_to_everyone_else(api_client, make_room, training_session, stranger, stored, owner):
    room = make_room()
    client = api_client(stranger)
    client.post(f"/api/v1/rooms/{room.code}/join/", {}, format="json")
    client.post(f"/api/v1/rooms/{room.code}/leave/", {}, format="json")
    other, _ = training_session_create(owner=stranger, id="strangers-run")

    for response in (
        api_client().get(url(training_session, "metrics")),
        api_client().get(url(training_session, "metrics") + "?visitor_token=guess"),
        client.get(url(training_session, "metrics")),
        api_client(owner).get(url(other, "metrics")),
        api_client(owner).get(url("no-such-run", "metrics")),
    ):
        assert_api_error(response, 404, "not_found")


@pytest.mark.parametrize(
    ("query", "field"),
    [("after_id=x", "after_id"), ("limit=x", "limit"), ("limit=0", "limit"), ("limit=5001", "limit")],
)
def test_bad_history_query(owner_client, training_session, query, field):
    response = owner_client.get(url(training_session, "metrics") + f"?{query}")

    assert_api_error(response, 400, "validation_error", field)
