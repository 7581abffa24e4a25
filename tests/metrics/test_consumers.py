"""The ingest WebSocket (``/ws/ingest/<training_session_id>/``): token auth, acks, errors, frames."""

from __future__ import annotations

import json
import math
import struct

import pytest
from channels.db import database_sync_to_async

from metrics.models import MetricPoint, TrainingSession
from metrics.services import training_session_create
from tests.support.live import PNG, close_thread_connections, expect_refused, frame_bytes, point, receive_json, ws_open

pytestmark = pytest.mark.django_db(transaction=True)
db = database_sync_to_async


@pytest.fixture(autouse=True)
async def _closes_thread_connections():
    yield
    await close_thread_connections()


@pytest.fixture
def token(owner, make_token):
    return make_token(owner)


async def trainer_socket(training_session_id: str, token: str):
    return await ws_open(f"/ws/ingest/{training_session_id}/", token=token)


async def stored(training_session) -> list[tuple[str, int]]:
    rows = MetricPoint.objects.filter(training_session=training_session).order_by("stream", "seq")
    return await db(lambda: list(rows.values_list("stream", "seq")))()


# --- Admission --------------------------------------------------------------------------------


async def test_no_token_closes_4401(training_session):
    communicator = await ws_open(f"/ws/ingest/{training_session.pk}/")
    await expect_refused(communicator, "sign_in_required", 4401)


@pytest.mark.parametrize("header", [b"Bearer spt_not-a-real-token", b"Bearer", b"Basic dXNlcjpwYXNz", b"spt_x"])
async def test_invalid_token_closes_4401(training_session, header):
    from channels.testing import WebsocketCommunicator

    from spectator_site.asgi import application

    communicator = WebsocketCommunicator(
        application, f"/ws/ingest/{training_session.pk}/", headers=[(b"authorization", header)]
    )
    connected, _ = await communicator.connect()
    assert connected
    await expect_refused(communicator, "sign_in_required", 4401)


async def test_revoked_token_closes_4401(training_session, token):
    from accounts.models import ApiToken

    await db(ApiToken.objects.update)(revoked_at="2020-01-01T00:00:00Z")
    communicator = await trainer_socket(training_session.pk, token)
    await expect_refused(communicator, "sign_in_required", 4401)


async def test_someone_elses_session_closes_4404(training_session, make_user, make_token):
    other = await db(make_user)("other")
    communicator = await trainer_socket(training_session.pk, await db(make_token)(other))
    await expect_refused(communicator, "training_session_not_found", 4404)


async def test_unknown_session_closes_4404(token):
    communicator = await trainer_socket("no-such-run", token)
    await expect_refused(communicator, "training_session_not_found", 4404)


async def test_closed_session_closes_4404(training_session, token):
    await db(TrainingSession.objects.filter(pk=training_session.pk).update)(status="closed")
    communicator = await trainer_socket(training_session.pk, token)
    await expect_refused(communicator, "training_session_not_found", 4404)


async def test_staff_may_ingest_into_any_session(training_session, make_user, make_token):
    staff = await db(make_user)("staffer", staff=True)
    communicator = await trainer_socket(training_session.pk, await db(make_token)(staff))
    await communicator.send_json_to({"type": "ping", "ref": 1})
    assert await receive_json(communicator) == {"type": "pong", "ref": 1}
    await communicator.disconnect()


async def test_token_in_the_token_scheme_is_accepted(training_session, token):
    from channels.testing import WebsocketCommunicator

    from spectator_site.asgi import application

    communicator = WebsocketCommunicator(
        application, f"/ws/ingest/{training_session.pk}/", headers=[(b"authorization", f"Token {token}".encode())]
    )
    assert (await communicator.connect())[0]
    await communicator.send_json_to({"type": "ping"})
    assert await receive_json(communicator) == {"type": "pong", "ref": None}
    await communicator.disconnect()


# --- Metrics --------------------------------------------------------------------------------


async def test_metrics_are_acked_and_a_resent_batch_is_not_stored_twice(training_session, token):
    communicator = await trainer_socket(training_session.pk, token)
    batch = {"type": "metrics", "ref": "b1", "points": [point(1), point(2), point(3)]}
    await communicator.send_json_to(batch)
    assert await receive_json(communicator) == {
        "type": "ack",
        "ref": "b1",
        "accepted": 3,
        "duplicates": 0,
        "last_seq": 3,
    }
    await communicator.send_json_to({**batch, "ref": "b1-retry"})
    assert await receive_json(communicator) == {
        "type": "ack",
        "ref": "b1-retry",
        "accepted": 0,
        "duplicates": 3,
        "last_seq": 3,
    }
    # Half old, half new.
    await communicator.send_json_to({"type": "metrics", "ref": 2, "points": [point(3), point(4)]})
    assert await receive_json(communicator) == {"type": "ack", "ref": 2, "accepted": 1, "duplicates": 1, "last_seq": 4}
    assert await stored(training_session) == [("t", 1), ("t", 2), ("t", 3), ("t", 4)]
    await communicator.disconnect()


async def test_repeats_inside_a_batch_and_other_streams(training_session, token):
    communicator = await trainer_socket(training_session.pk, token)
    points = [point(1), point(1), {**point(1), "stream": None}]
    await communicator.send_json_to({"type": "metrics", "stream": "worker-2", "points": points})
    ack = await receive_json(communicator)
    assert (ack["accepted"], ack["duplicates"]) == (2, 1)
    assert await stored(training_session) == [("t", 1), ("worker-2", 1)]
    await communicator.disconnect()


async def test_empty_batch_is_acked(training_session, token):
    communicator = await trainer_socket(training_session.pk, token)
    await communicator.send_json_to({"type": "metrics", "ref": 0, "points": []})
    assert await receive_json(communicator) == {
        "type": "ack",
        "ref": 0,
        "accepted": 0,
        "duplicates": 0,
        "last_seq": None,
    }
    await communicator.disconnect()


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"win_rate": 1.5}, "points.1.win_rate"),
        ({"current_reward": "high"}, "points.1.current_reward"),
        ({"episode": -1}, "points.1.episode"),
        ({"mystery": 1}, "points.1.mystery"),
        ({"seq": None}, "points.1.seq"),
        ({"stream": "bad stream!"}, "points.1.stream"),
        ({"extra": {"bad key!": 1.0}}, "points.1.extra"),
        ({"action_probabilities": [0.5, 0.6]}, "points.1.action_probabilities"),
    ],
)
async def test_invalid_point_names_the_field_and_the_socket_stays_open(training_session, token, bad, field):
    communicator = await trainer_socket(training_session.pk, token)
    await communicator.send_json_to({"type": "metrics", "ref": 9, "points": [point(1), {**point(2), **bad}]})
    error = await receive_json(communicator)
    assert error["type"] == "error" and error["code"] == "invalid", error
    assert (error["field"], error["ref"]) == (field, 9)
    assert error["message"]
    assert await stored(training_session) == []  # the whole batch is refused, nothing half-stored
    await communicator.send_json_to({"type": "metrics", "ref": 10, "points": [point(1), point(2)]})
    assert (await receive_json(communicator))["accepted"] == 2
    await communicator.disconnect()


@pytest.mark.parametrize(("key", "value"), [("loss", math.nan), ("loss", -math.inf), ("episode", 2**70)])
async def test_what_pythons_json_dumps_writes_is_read_and_the_field_named(training_session, token, key, value):
    # A diverged loss is NaN, and json.dumps writes it bare; the error must name the field.
    communicator = await trainer_socket(training_session.pk, token)
    await communicator.send_to(text_data=json.dumps({"type": "metrics", "points": [{**point(1), key: value}]}))
    error = await receive_json(communicator)
    assert (error["type"], error["field"]) == ("error", f"points.0.{key}"), error
    await communicator.disconnect()


async def test_too_many_points(training_session, token):
    communicator = await trainer_socket(training_session.pk, token)
    await communicator.send_json_to({"type": "metrics", "points": [point(i) for i in range(1001)]})
    error = await receive_json(communicator)
    assert error["field"] == "points"
    await communicator.disconnect()


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("{oops", "message"),
        ("[]", "message"),
        ('"metrics"', "message"),
        ('{"type": "launch"}', "type"),
        ("{}", "type"),
        ('{"type": "metrics", "points": {"a": 1}}', "points"),
    ],
)
async def test_malformed_messages_get_errors(training_session, token, text, field):
    communicator = await trainer_socket(training_session.pk, token)
    await communicator.send_to(text_data=text)
    error = await receive_json(communicator)
    assert (error["type"], error["code"], error["field"]) == ("error", "invalid", field), error
    await communicator.send_json_to({"type": "ping", "ref": "still-here"})
    assert await receive_json(communicator) == {"type": "pong", "ref": "still-here"}
    await communicator.disconnect()


async def test_oversized_text_message(training_session, token):
    from metrics.consumers import MAX_TEXT_MESSAGE

    communicator = await trainer_socket(training_session.pk, token)
    await communicator.send_to(text_data=" " * (MAX_TEXT_MESSAGE + 1))
    assert (await receive_json(communicator))["field"] == "message"
    await communicator.disconnect()


# --- Decisions, status, ping ----------------------------------------------------------------


async def test_decisions_are_not_acked_but_validated(training_session, token):
    communicator = await trainer_socket(training_session.pk, token)
    await communicator.send_json_to({"type": "decisions", "decisions": [{"action_probabilities": [0.5, 0.5]}]})
    await communicator.send_json_to({"type": "decision", "q_values": {"left": 1.0}, "selected_action": "left"})
    assert await communicator.receive_nothing()
    await communicator.send_json_to(
        {"type": "decisions", "ref": 3, "decisions": [{"action_probabilities": [0.2, 0.2]}]}
    )
    error = await receive_json(communicator)
    assert (error["field"], error["ref"]) == ("decisions.0.action_probabilities", 3)
    await communicator.send_json_to({"type": "decisions", "decisions": [{"selected_action": 1}]})
    assert (await receive_json(communicator))["field"] == "decisions.0.action_probabilities"
    await communicator.send_json_to({"type": "decisions", "decisions": "nope"})
    assert (await receive_json(communicator))["field"] == "decisions"
    await communicator.send_json_to({"type": "decision", "action_probabilities": {"a": -0.5, "b": 1.5}})
    assert (await receive_json(communicator))["field"] == "decision.0.action_probabilities.a"
    await communicator.disconnect()


async def test_status_is_acked_and_stored(training_session, token):
    communicator = await trainer_socket(training_session.pk, token)
    await communicator.send_json_to({"type": "status", "status": "paused", "ref": "s"})
    assert await receive_json(communicator) == {"type": "ack", "ref": "s"}
    assert (await db(TrainingSession.objects.get)(pk=training_session.pk)).status == "paused"
    await communicator.send_json_to({"type": "status", "status": "exploded", "ref": "t"})
    error = await receive_json(communicator)
    assert (error["code"], error["field"], error["ref"]) == ("invalid", "status", "t")
    await communicator.disconnect()


async def test_ping(training_session, token):
    communicator = await trainer_socket(training_session.pk, token)
    await communicator.send_json_to({"type": "ping", "ref": 42})
    assert await receive_json(communicator) == {"type": "pong", "ref": 42}
    await communicator.disconnect()


# --- Frames -----------------------------------------------------------------------------------


async def test_valid_frame_is_accepted_silently(training_session, token):
    communicator = await trainer_socket(training_session.pk, token)
    await communicator.send_to(bytes_data=frame_bytes({"type": "frame", "mime": "image/png", "step": 1}, PNG))
    assert await communicator.receive_nothing()
    await communicator.send_json_to({"type": "ping"})
    assert (await receive_json(communicator))["type"] == "pong"
    await communicator.disconnect()


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (b"\x00\x00", "frame"),
        (frame_bytes({"mime": "image/png"}, b"GIF89a-not-a-png"), "frame.image"),
        (frame_bytes({"mime": "image/jpeg"}, PNG), "frame.image"),
        (frame_bytes({"mime": "image/gif"}, b"GIF89a"), "frame.mime"),
        (frame_bytes({"mime": "image/png"}, b""), "frame.image"),
        (frame_bytes({"type": "video", "mime": "image/png"}, PNG), "frame.type"),
        (frame_bytes({"mime": "image/png", "step": -1}, PNG), "frame.step"),
        (struct.pack(">I", 10) + b"{not json}" + PNG, "frame.header"),
        (struct.pack(">I", 2) + b"[]" + PNG, "frame.header"),
        (struct.pack(">I", 0) + PNG, "frame.header"),
        (struct.pack(">I", 10_000) + b"{}", "frame.header"),
        (struct.pack(">I", 4) + b"\xff\xfe\xfd\xfc" + PNG, "frame.header"),
    ],
    ids=[
        "too-short",
        "bad-magic",
        "mime-mismatch",
        "bad-mime",
        "empty-image",
        "not-a-frame",
        "negative-step",
        "header-not-json",
        "header-not-object",
        "zero-header-length",
        "header-length-past-end",
        "header-not-utf8",
    ],
)
async def test_invalid_frames_get_errors_naming_the_field(training_session, token, data, field):
    communicator = await trainer_socket(training_session.pk, token)
    await communicator.send_to(bytes_data=data)
    error = await receive_json(communicator)
    assert (error["type"], error["code"], error["field"]) == ("error", "invalid", field), error
    await communicator.send_json_to({"type": "ping"})
    assert (await receive_json(communicator))["type"] == "pong"
    await communicator.disconnect()


async def test_frame_too_large(training_session, token, settings):
    settings.SPECTATOR_MAX_FRAME_BYTES = 100
    communicator = await trainer_socket(training_session.pk, token)
    await communicator.send_to(bytes_data=frame_bytes({"mime": "image/png"}, PNG))
    error = await receive_json(communicator)
    assert error["field"] == "frame.image" and "100" in error["message"]
    await communicator.send_to(bytes_data=frame_bytes({"mime": "image/png"}, PNG[:100]))
    assert await communicator.receive_nothing()
    await communicator.disconnect()


async def test_session_closed_while_connected_refuses_more_points(training_session, token, owner):
    from metrics.services import training_session_close

    communicator = await trainer_socket(training_session.pk, token)
    await communicator.send_json_to({"type": "metrics", "points": [point(1)]})
    assert (await receive_json(communicator))["accepted"] == 1
    await db(training_session_close)(training_session=training_session, actor=owner)
    await communicator.send_json_to({"type": "metrics", "ref": 2, "points": [point(2)]})
    error = await receive_json(communicator)
    assert (error["type"], error["field"], error["ref"]) == ("error", "training_session_id", 2), error
    assert await stored(training_session) == [("t", 1)]
    await communicator.disconnect()


async def test_two_sessions_do_not_mix(owner, token):
    first, _ = await db(training_session_create)(owner=owner, id="run-a")
    second, _ = await db(training_session_create)(owner=owner, id="run-b")
    a = await trainer_socket(first.pk, token)
    b = await trainer_socket(second.pk, token)
    await a.send_json_to({"type": "metrics", "points": [point(1)]})
    await b.send_json_to({"type": "metrics", "points": [point(1), point(2)]})
    assert (await receive_json(a))["accepted"] == 1
    assert (await receive_json(b))["accepted"] == 2
    assert await stored(first) == [("t", 1)]
    assert await stored(second) == [("t", 1), ("t", 2)]
    await a.disconnect()
    await b.disconnect()
