"""HTTP ingest (metrics, decisions, frames, status) and the metric history API."""

import pytest

from metrics.models import MetricPoint, TrainingSession
from rooms.access import Visitor
from rooms.services import anon_key_for, room_join, room_leave
from tests.api_errors import assert_api_error
from tests.support.live import PNG, frame_bytes, point


def url(training_session_id: str, action: str) -> str:
    return f"/api/v1/sessions/{training_session_id}/{action}/"


@pytest.fixture
def trainer(api_client, owner, make_token):
    """The owner's client, authenticated the way training scripts are: a bearer token."""
    return api_client(token=make_token(owner))


@pytest.fixture
def stranger(make_user):
    return make_user("stranger")


def stored(training_session) -> list[tuple[str, int]]:
    return list(MetricPoint.objects.filter(training_session=training_session).values_list("stream", "seq"))


def post_frame(client, training_session_id: str, body: bytes):
    return client.generic("POST", url(training_session_id, "frames"), body, content_type="application/octet-stream")


# --- Metrics ingest ----------------------------------------------------------------------------


def test_ingest_stores_points_and_counts_decisions(trainer, training_session):
    body = {
        "stream": "main",
        "points": [{**point(1), "stream": None}, {**point(2), "stream": None}],
        "decisions": [{"action_probabilities": [0.5, 0.5]}],
    }
    response = trainer.post(url(training_session.pk, "ingest"), body, format="json")
    assert response.status_code == 200, response.content
    assert response.json() == {"accepted": 2, "duplicates": 0, "last_seq": 2, "decisions": 1}
    assert sorted(stored(training_session)) == [("main", 1), ("main", 2)]


def test_ingest_retry_is_idempotent(trainer, training_session):
    body = {"points": [point(1), point(2), point(3)]}
    first = trainer.post(url(training_session.pk, "ingest"), body, format="json")
    retry = trainer.post(url(training_session.pk, "ingest"), body, format="json")
    assert first.json()["accepted"] == 3
    assert retry.status_code == 200
    assert retry.json() == {"accepted": 0, "duplicates": 3, "last_seq": 3, "decisions": 0}
    assert MetricPoint.objects.filter(training_session=training_session).count() == 3


def test_ingest_with_a_session_login(api_client, owner, training_session):
    response = api_client(owner).post(url(training_session.pk, "ingest"), {"points": [point(1)]}, format="json")
    assert response.status_code == 200, response.content


def test_ingest_empty_body(trainer, training_session):
    response = trainer.post(url(training_session.pk, "ingest"), {}, format="json")
    assert response.json() == {"accepted": 0, "duplicates": 0, "last_seq": None, "decisions": 0}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"points": [point(1), {**point(2), "win_rate": 7}]}, "points.1.win_rate"),
        ({"points": [{**point(1), "current_reward": "NaN"}]}, "points.0.current_reward"),
        ({"points": [{**point(1), "surprise": 1}]}, "points.0.surprise"),
        ({"points": "all of them"}, "points"),
        ({"decisions": [{"action_probabilities": [0.9, 0.9]}]}, "decisions.0.action_probabilities"),
        ({"decisions": [{}]}, "decisions.0.action_probabilities"),
    ],
)
def test_ingest_invalid_names_the_field_and_stores_nothing(trainer, training_session, body, field):
    response = trainer.post(url(training_session.pk, "ingest"), body, format="json")
    assert_api_error(response, 400, "validation_error", field)
    assert stored(training_session) == []


def test_ingest_body_must_be_an_object(trainer, training_session):
    response = trainer.post(url(training_session.pk, "ingest"), [point(1)], format="json")
    assert_api_error(response, 400, "validation_error", "body")


def test_ingest_nan_literal_is_refused(trainer, training_session):
    raw = '{"points": [{"stream": "t", "seq": 1, "timestamp": 1.0, "episode": 1, "loss_value": NaN}]}'
    response = trainer.generic("POST", url(training_session.pk, "ingest"), raw, content_type="application/json")
    assert response.status_code == 400, response.content
    assert stored(training_session) == []


def test_ingest_needs_authentication(api_client, training_session):
    response = api_client().post(url(training_session.pk, "ingest"), {"points": [point(1)]}, format="json")
    assert_api_error(response, 401, "not_authenticated")
    bad = api_client(token="spt_not-a-token").post(url(training_session.pk, "ingest"), {}, format="json")
    assert bad.status_code == 401


@pytest.mark.parametrize("action", ["ingest", "frames", "status"])
def test_someone_elses_or_unknown_session_looks_missing(api_client, stranger, make_token, training_session, action):
    client = api_client(token=make_token(stranger))
    for session_id in (training_session.pk, "no-such-run"):
        if action == "frames":
            response = post_frame(client, session_id, frame_bytes({"mime": "image/png"}, PNG))
        elif action == "status":
            response = client.post(url(session_id, action), {"status": "paused"}, format="json")
        else:
            response = client.post(url(session_id, action), {"points": [point(1)]}, format="json")
        assert_api_error(response, 404, "not_found")
    assert stored(training_session) == []


@pytest.mark.parametrize("status", ["closed", "completed"])
def test_ingest_into_a_finished_session_is_refused(trainer, training_session, status):
    TrainingSession.objects.filter(pk=training_session.pk).update(status=status)
    response = trainer.post(url(training_session.pk, "ingest"), {"points": [point(1)]}, format="json")
    assert_api_error(response, 400, "validation_error", "training_session_id")
    response = post_frame(trainer, training_session.pk, frame_bytes({"mime": "image/png"}, PNG))
    assert_api_error(response, 400, "validation_error", "training_session_id")


def test_staff_may_ingest_into_any_session(api_client, make_user, make_token, training_session):
    staff = make_user("staffer", staff=True)
    response = api_client(token=make_token(staff)).post(
        url(training_session.pk, "ingest"), {"points": [point(1)]}, format="json"
    )
    assert response.status_code == 200, response.content


# --- Frames -----------------------------------------------------------------------------------


def test_frame_accepted(trainer, training_session):
    response = post_frame(trainer, training_session.pk, frame_bytes({"mime": "image/png", "step": 3}, PNG))
    assert response.status_code == 202, response.content
    assert response.json() == {"accepted": 1}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (frame_bytes({"mime": "image/png"}, b"not a png"), "frame.image"),
        (frame_bytes({"mime": "image/tiff"}, PNG), "frame.mime"),
        (b"\x00\x00\x00\x05{bad}" + PNG, "frame.header"),
        (b"\x00", "frame"),
    ],
)
def test_bad_frame(trainer, training_session, body, field):
    assert_api_error(post_frame(trainer, training_session.pk, body), 400, "validation_error", field)


def test_frame_too_large(trainer, training_session, settings):
    settings.SPECTATOR_MAX_FRAME_BYTES = 64
    response = post_frame(trainer, training_session.pk, frame_bytes({"mime": "image/png"}, PNG))
    assert_api_error(response, 400, "validation_error", "frame.image")
    # Far past the limit: refused while reading the body.
    response = post_frame(trainer, training_session.pk, frame_bytes({"mime": "image/png"}, PNG * 10))
    assert_api_error(response, 400, "validation_error", "frame.image")


def test_frame_needs_octet_stream(trainer, training_session):
    response = trainer.post(url(training_session.pk, "frames"), {"mime": "image/png"}, format="json")
    assert response.status_code == 415


def test_frame_needs_authentication(api_client, training_session):
    assert post_frame(api_client(), training_session.pk, frame_bytes({"mime": "image/png"}, PNG)).status_code == 401


# --- Status -----------------------------------------------------------------------------------


def test_status_set(trainer, training_session):
    response = trainer.post(url(training_session.pk, "status"), {"status": "paused", "message": "eval"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "paused"
    training_session.refresh_from_db()
    assert training_session.status == "paused"


@pytest.mark.parametrize(
    "body", [{"status": "closed"}, {"status": "exploded"}, {}, {"status": "running", "message": "x" * 501}]
)
def test_status_invalid(trainer, training_session, body):
    response = trainer.post(url(training_session.pk, "status"), body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["error"] == "validation_error"


def test_status_of_a_closed_session(trainer, training_session):
    TrainingSession.objects.filter(pk=training_session.pk).update(status="closed")
    response = trainer.post(url(training_session.pk, "status"), {"status": "running"}, format="json")
    assert_api_error(response, 400, "validation_error", "status")
    response = trainer.post(url(training_session.pk, "status"), {"status": "completed"}, format="json")
    assert response.status_code == 200


def test_status_needs_authentication(api_client, training_session):
    assert api_client().post(url(training_session.pk, "status"), {"status": "paused"}, format="json").status_code == 401


# --- History ----------------------------------------------------------------------------------


@pytest.fixture
def history(trainer, training_session):
    response = trainer.post(url(training_session.pk, "ingest"), {"points": [point(i) for i in range(5)]}, format="json")
    assert response.json()["accepted"] == 5
    return list(
        MetricPoint.objects.filter(training_session=training_session).order_by("id").values_list("id", flat=True)
    )


def test_history_for_the_owner(api_client, owner, training_session, history):
    response = api_client(owner).get(url(training_session.pk, "metrics"))
    assert response.status_code == 200, response.content
    body = response.json()
    assert [entry["id"] for entry in body] == history
    assert [entry["data"]["seq"] for entry in body] == [0, 1, 2, 3, 4]
    assert body[2]["data"]["current_reward"] == 2.0 and body[2]["data"]["extra"] == {}


def test_history_after_id_and_limit(api_client, owner, training_session, history):
    client = api_client(owner)
    response = client.get(url(training_session.pk, "metrics"), {"after_id": history[1], "limit": 2})
    assert [entry["id"] for entry in response.json()] == history[2:4]
    assert client.get(url(training_session.pk, "metrics"), {"after_id": history[-1]}).json() == []
    assert len(client.get(url(training_session.pk, "metrics"), {"after_id": -5}).json()) == 5


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 5001}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"after_id": "last"}, "after_id"),
        ({"after_id": "1.5"}, "after_id"),
    ],
)
def test_history_bad_parameters(api_client, owner, training_session, params, field):
    response = api_client(owner).get(url(training_session.pk, "metrics"), params)
    assert_api_error(response, 400, "validation_error", field)


def test_history_for_a_present_signed_in_spectator(api_client, make_room, make_user, training_session, history):
    viewer = make_user("viewer")
    room = make_room()
    room_join(room=room, visitor=Visitor(user=viewer))
    response = api_client(viewer).get(url(training_session.pk, "metrics"))
    assert response.status_code == 200
    assert len(response.json()) == 5


def test_history_for_an_anonymous_spectator_with_the_visitor_token(api_client, make_room, training_session, history):
    room = make_room()
    room_join(room=room, visitor=Visitor(anon_key=anon_key_for("secret-token")))
    response = api_client().get(url(training_session.pk, "metrics"), {"visitor_token": "secret-token"})
    assert response.status_code == 200
    assert len(response.json()) == 5
    response = api_client().get(url(training_session.pk, "metrics"), {"visitor_token": "wrong-token"})
    assert_api_error(response, 404, "not_found")


def test_history_anonymous_spectator_through_the_join_session(api_client, make_room, training_session, history):
    room = make_room()
    client = api_client()
    assert client.post(f"/api/v1/rooms/{room.code}/join/", {"display_name": "Guest"}, format="json").status_code == 200
    assert client.get(url(training_session.pk, "metrics")).status_code == 200


def test_history_hidden_from_strangers_and_after_leaving(api_client, stranger, make_room, training_session, history):
    assert_api_error(api_client(stranger).get(url(training_session.pk, "metrics")), 404, "not_found")
    assert_api_error(api_client().get(url(training_session.pk, "metrics")), 404, "not_found")
    room = make_room()
    spectator = room_join(room=room, visitor=Visitor(user=stranger)).spectator
    assert api_client(stranger).get(url(training_session.pk, "metrics")).status_code == 200
    room_leave(spectator=spectator)
    assert_api_error(api_client(stranger).get(url(training_session.pk, "metrics")), 404, "not_found")


def test_history_of_an_unknown_session(api_client, owner):
    assert_api_error(api_client(owner).get(url("no-such-run", "metrics")), 404, "not_found")
