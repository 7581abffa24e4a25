"""Garbage on the sockets: each bad message gets an ``error`` (or a documented close code),
the server keeps serving, and the other spectators of the room keep receiving the stream.

The room socket gets malformed JSON, deep nesting, wrong types for every field of every
message type, unknown types, huge text, binary and a flood; the ingest socket gets garbage
batches between good ones, and every point accepted before is in the history afterwards.
Messages from Hypothesis strategies are drawn once, derandomized, then replayed on one socket.
"""

from __future__ import annotations

import json
import secrets

import pytest
from channels.db import database_sync_to_async
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metrics.ingest import metric_points_clean
from metrics.models import MetricPoint
from metrics.services import metric_points_append
from rooms import consumers
from rooms.access import Visitor
from rooms.services import room_join
from rooms.tickets import ticket_issue
from tests.support.live import (
    PNG,
    close_thread_connections,
    frame_bytes,
    login_cookie,
    point,
    receive_json,
    room_path,
    ws_open,
)

pytestmark = pytest.mark.django_db(transaction=True)
db = database_sync_to_async

# What a fuzzed room socket may answer with; anything else (or a crash, or a close) fails.
ANSWERS = {"error", "pong", "speed", "replay_state", "spectator_list", "graph_config", "graph_update"}
WRONG_VALUES = [
    None,
    True,
    False,
    "",
    "x" * 300,
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 <script>",
    [],
    [1, 2],
    {},
    {"nested": {"deeper": [None]}},
    1.5,
    -1,
    10**40,
    float("nan"),
    float("inf"),
]
# Each field of each message type the room socket reads.
FIELDS = {
    "ping": ["t"],
    "set_speed": ["max_hz", "mode"],
    "approve": ["request_id"],
    "deny": ["request_id"],
    "kick": ["spectator_id", "reason"],
    "ban": ["spectator_id", "reason"],
    "replay": ["action", "episode", "step", "delta", "speed", "loop", "lead", "follow"],
}


@pytest.fixture(autouse=True)
async def _closes_thread_connections():
    yield
    await close_thread_connections()


@pytest.fixture
def no_flood_limit(monkeypatch):
    """Lift the per-connection message rate for tests that send many messages on purpose."""
    monkeypatch.setattr(consumers, "CLIENT_MESSAGES_PER_SECOND", 100_000)


@pytest.fixture
def room(make_room):
    return make_room(max_spectators=10)


def admit(room, user=None) -> str:
    """A ticket for a new seat in ``room`` (sync)."""
    visitor = Visitor(user=user) if user else Visitor(anon_key=secrets.token_hex(16))
    spectator = room_join(room=room, visitor=visitor).spectator
    return ticket_issue(room_id=room.pk, spectator_id=spectator.pk)


async def watch(room, ticket: str | None = None, *, cookie: str | None = None):
    communicator = await ws_open(room_path(room.code, ticket), cookie=cookie)
    assert (await receive_json(communicator))["type"] == "graph_config"
    assert (await receive_json(communicator))["type"] == "snapshot"
    return communicator


async def answers_to(communicator, *, text: str | None = None, data: bytes | None = None, marker: int) -> list[dict]:
    """Send one message, then a ping; return what came before that ping's pong."""
    # send_input, not send_to: empty text and empty bytes are messages too.
    frame = {"bytes": data} if text is None else {"text": text}
    await communicator.send_input({"type": "websocket.receive", **frame})
    await communicator.send_json_to({"type": "ping", "t": marker})
    answers = []
    while True:
        message = await receive_json(communicator)
        if message == {"type": "pong", "t": marker}:
            return answers
        answers.append(message)


def assert_answered(answers: list[dict], sent) -> None:
    for answer in answers:
        assert answer["type"] in ANSWERS, (sent, answer)
        if answer["type"] == "error":
            assert isinstance(answer["code"], str) and answer["code"], (sent, answer)
            assert isinstance(answer["message"], str) and answer["message"], (sent, answer)


async def assert_stream_reaches(communicator, training_session, episode: int) -> None:
    """A metric point stored now reaches ``communicator`` as ``training_metrics``."""
    await db(metric_points_append)(
        training_session=training_session, points=metric_points_clean([point(episode, stream="after")])
    )
    while True:
        message = await receive_json(communicator)
        if message["type"] == "training_metrics" and message["data"]["episode"] == episode:
            return


async def fuzz_and_check_bystander(room, training_session, fuzzer, messages) -> None:
    bystander = await watch(room, await db(admit)(room))
    for index, (text, data) in enumerate(messages):
        assert_answered(await answers_to(fuzzer, text=text, data=data, marker=index), text or data)
    await assert_stream_reaches(bystander, training_session, episode=10_000)
    await assert_stream_reaches(fuzzer, training_session, episode=10_001)
    await fuzzer.disconnect()
    await bystander.disconnect()


# --- Explicit cases ---------------------------------------------------------------------------

MALFORMED = [
    "{not json",
    "",
    " ",
    "null",
    "[1, 2]",
    '"ping"',
    "42",
    '{"type": 5}',
    '{"type": null}',
    '{"type": ["ping"]}',
    "{}",
    '{"type": "ping"',
    "[" * 4000,
    '{"a":' * 1000 + "1" + "}" * 1000,
    '{"type": "launch_missiles"}',
    '{"type": ""}',
    json.dumps({"type": "x" * 3000}),
    '{"type": "ping", "type": "kick"}',
    "\ud800",
    "\x00\x01\x02",
]


def wrong_type_messages() -> list[str]:
    messages = []
    for kind, fields in FIELDS.items():
        for name in fields:
            for value in WRONG_VALUES:
                messages.append(json.dumps({"type": kind, name: value}))
    return messages


@pytest.mark.parametrize("as_manager", [False, True], ids=["spectator", "manager"])
async def test_malformed_and_wrongly_typed_messages(room, training_session, owner, as_manager, no_flood_limit):
    if as_manager:
        fuzzer = await watch(room, cookie=await db(login_cookie)(owner))
    else:
        fuzzer = await watch(room, await db(admit)(room))
    messages = [(text, None) for text in MALFORMED + wrong_type_messages()]
    await fuzz_and_check_bystander(room, training_session, fuzzer, messages)


async def test_oversized_and_binary_messages(room, training_session, no_flood_limit):
    fuzzer = await watch(room, await db(admit)(room))
    limit = consumers.MAX_CLIENT_MESSAGE
    messages = [
        (json.dumps({"type": "ping", "pad": "x" * limit}), None),
        ("x" * (1024 * 1024), None),
        (None, b"\x00\x01binary"),
        (None, b""),
        (None, frame_bytes({"mime": "image/png"}, PNG)),
        (None, b"\xff" * (256 * 1024)),
    ]
    bystander = await watch(room, await db(admit)(room))
    for index, (text, data) in enumerate(messages):
        answers = await answers_to(fuzzer, text=text, data=data, marker=index)
        errors = [(answer["type"], answer.get("code")) for answer in answers if answer["type"] != "spectator_list"]
        assert errors == [("error", "bad_request")], answers
    await assert_stream_reaches(bystander, training_session, episode=10_000)
    await fuzzer.disconnect()
    await bystander.disconnect()


async def test_a_flood_closes_4429_and_the_others_keep_watching(room, training_session):
    fuzzer = await watch(room, await db(admit)(room))
    bystander = await watch(room, await db(admit)(room))
    for index in range(consumers.CLIENT_MESSAGES_PER_SECOND * 3):
        await fuzzer.send_to(text_data=json.dumps({"type": "nonsense", "n": index}))
    outputs = []
    while not outputs or outputs[-1]["type"] != "websocket.close":
        outputs.append(await fuzzer.receive_output(3))
    assert outputs[-1] == {"type": "websocket.close", "code": 4429}
    assert json.loads(outputs[-2]["text"])["code"] == "rate_limited"
    await assert_stream_reaches(bystander, training_session, episode=10_000)
    await fuzzer.disconnect()
    await bystander.disconnect()


# --- Hypothesis: arbitrary JSON shaped like our messages --------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True) | st.text(max_size=20) | st.integers(-(2**70), 2**70),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
message_shapes = st.one_of(
    st.fixed_dictionaries(
        {"type": st.sampled_from(sorted(FIELDS))},
        optional={name: json_values for name in sorted({f for fields in FIELDS.values() for f in fields})},
    ),
    st.dictionaries(st.text(max_size=10), json_values, max_size=5),
    json_values,
)


def drawn_messages(count: int) -> list[str]:
    """``count`` messages from ``message_shapes``, the same ones every run."""
    drawn = []

    @given(message_shapes)
    @settings(
        max_examples=count, derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck)
    )
    def draw(message):
        text = json.dumps(message)
        # Integers that could name a real request or seat are valid moderation, not garbage.
        if isinstance(message, dict) and message.get("type") in ("approve", "deny", "kick", "ban"):
            if any(isinstance(value, int) for value in message.values()):
                return
        drawn.append(text)

    draw()
    return drawn[:count]


@pytest.mark.parametrize("as_manager", [False, True], ids=["spectator", "manager"])
async def test_hypothesis_messages(room, training_session, owner, as_manager, no_flood_limit):
    messages = drawn_messages(120)
    assert len(messages) >= 60
    if as_manager:
        fuzzer = await watch(room, cookie=await db(login_cookie)(owner))
    else:
        fuzzer = await watch(room, await db(admit)(room))
    await fuzz_and_check_bystander(room, training_session, fuzzer, [(text, None) for text in messages])


# --- The ingest socket ----------------------------------------------------------------------

INGEST_GARBAGE = [
    ("{not json", "message"),
    ("[" * 5000, "message"),
    ("[]", "message"),
    ('"metrics"', "message"),
    ("{}", "type"),
    ('{"type": "rockets"}', "type"),
    ('{"type": "metrics", "points": "lots"}', "points"),
    ('{"type": "metrics", "points": [42]}', "points.0"),
    (json.dumps({"type": "metrics", "points": [{**point(99), "seq": "one"}]}), "points.0.seq"),
    (json.dumps({"type": "metrics", "points": [{**point(99), "episode": "x"}]}), "points.0.episode"),
    (json.dumps({"type": "metrics", "points": [{**point(99), "win_rate": "high"}]}), "points.0.win_rate"),
    (json.dumps({"type": "metrics", "points": [{**point(99), "extra": {"k": "v"}}]}), "points.0.extra"),
    (json.dumps({"type": "metrics", "points": [point(98), {**point(99), "current_reward": [1]}]}), "points.1"),
    ('{"type": "decisions", "decisions": "left"}', "decisions"),
    ('{"type": "decisions", "decisions": [{"action_probabilities": "left"}]}', "decisions.0.action_probabilities"),
]


async def ingest_socket(training_session, token):
    return await ws_open(f"/ws/ingest/{training_session.pk}/", token=token)


@pytest.mark.parametrize(("text", "field"), INGEST_GARBAGE, ids=[field for _text, field in INGEST_GARBAGE])
async def test_ingest_garbage_names_the_field_and_keeps_what_was_accepted(
    training_session, owner, make_token, text, field
):
    trainer = await ingest_socket(training_session, await db(make_token)(owner))
    await trainer.send_json_to({"type": "metrics", "ref": 1, "points": [point(seq) for seq in (1, 2, 3)]})
    assert (await receive_json(trainer))["accepted"] == 3

    await trainer.send_to(text_data=text)
    error = await receive_json(trainer)
    assert (error["type"], error["code"]) == ("error", "invalid"), error
    assert error["field"] == field or error["field"].startswith(f"{field}."), error
    assert error["message"]

    await trainer.send_json_to({"type": "metrics", "ref": 2, "points": [point(seq) for seq in (4, 5)]})
    assert (await receive_json(trainer))["accepted"] == 2
    rows = MetricPoint.objects.filter(training_session=training_session).order_by("seq")
    assert await db(lambda: list(rows.values_list("seq", flat=True)))() == [1, 2, 3, 4, 5]
    await trainer.disconnect()


async def test_ingest_binary_garbage_and_huge_text(training_session, owner, make_token):
    trainer = await ingest_socket(training_session, await db(make_token)(owner))
    await trainer.send_json_to({"type": "metrics", "points": [point(1)]})
    assert (await receive_json(trainer))["accepted"] == 1
    for data, field in (
        (b"", "frame"),
        (b"\x00\x00\x00\x05{bad}" + PNG, "frame.header"),
        (b"\x00\x00\x0f\xa0" + b"[" * 4000 + PNG, "frame.header"),
        (frame_bytes({"mime": "image/gif"}, PNG), "frame.mime"),
        (frame_bytes({"mime": "image/png"}, b"not a png"), "frame.image"),
    ):
        await trainer.send_input({"type": "websocket.receive", "bytes": data})
        error = await receive_json(trainer)
        assert error["field"] == field, (data[:40], error)
    await trainer.send_to(text_data="x" * (4 * 1024 * 1024 + 1))
    assert (await receive_json(trainer))["field"] == "message"
    await trainer.send_json_to({"type": "ping", "ref": "still"})
    assert await receive_json(trainer) == {"type": "pong", "ref": "still"}
    assert await db(MetricPoint.objects.filter(training_session=training_session).count)() == 1
    await trainer.disconnect()


async def test_ingest_garbage_does_not_disturb_the_room(room, training_session, owner, make_token):
    """A spectator of the session's room gets the good points and nothing of the garbage."""
    viewer = await watch(room, await db(admit)(room))
    trainer = await ingest_socket(training_session, await db(make_token)(owner))
    for text, _field in INGEST_GARBAGE:
        await trainer.send_to(text_data=text)
        assert (await receive_json(trainer))["type"] == "error"
    await trainer.send_json_to({"type": "metrics", "points": [point(7, stream="good")]})
    assert (await receive_json(trainer))["accepted"] == 1
    while True:
        message = await receive_json(viewer)
        assert message["type"] in ("training_metrics", "graph_update", "spectator_list"), message
        if message["type"] == "training_metrics":
            assert message["data"]["episode"] == 7
            break
    await trainer.disconnect()
    await viewer.disconnect()
