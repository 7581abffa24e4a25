"""Streamed exports: ``GET /api/v1/sessions/<id>/metrics.csv`` (and ``.json``, ``.ndjson``).

What goes in through the ingest API comes back out exactly: every field, unicode text and
extreme floats, in all three formats; filters, field choice, file names and who may download.
"""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.test import AsyncClient

from metrics.ingest import DECISION_FIELDS, metric_point_clean
from metrics.models import MetricPoint
from metrics.services import _metric_points_insert
from rooms.access import Visitor
from rooms.services import anon_key_for, room_join, room_leave
from tests.api_errors import assert_api_error

T0 = 1_700_000_000.123456789
INT_FIELDS = {"episode", "total_episodes", "episode_length", "model_generation", "seq"}
ALGORITHMS = [
    "DQN-λ",
    "策略梯度 🚀",
    'PPO "clip", v2',
    "multi\nline\r\ttab",
    "",
    "back\\slash",
    "null",
    ",null",
    "Ωmega\u2028sep",
]
EXTREMES = [1e308, -1e-308, 0.1 + 0.2, 5e-324, 1.7976931348623157e308, 2.2250738585072014e-308, -1e16, 1e-7, 1 / 3]


def raw_point(i: int) -> dict:
    """A MetricsData point as a trainer sends it: every field, unicode, extreme floats."""
    x = EXTREMES[i % len(EXTREMES)]
    data = {
        "stream": "main" if i % 4 else "eval",
        "seq": i,
        "timestamp": T0 + i * 0.001,
        "episode": i,
        "total_episodes": 2**62,
        "current_reward": x,
        "average_reward": -x,
        "best_reward": 0.1 + 0.2,
        "episode_length": 2**53 + 1,
        "win_rate": 1 / 3,
        "loss_value": None if i % 3 == 0 else -1e-308,
        "learning_rate": 5e-324,
        "epsilon": 1e308,
        "model_generation": i,
        "algorithm": ALGORITHMS[i % len(ALGORITHMS)],
        "training_time_elapsed": 1e308,
        "actions_per_second": 0.0,
        "memory_usage_mb": 2.2250738585072014e-308,
        "extra": {"entropy": x, "kl/div": -1e308, "a b.c:d": 1e16} if i % 5 else {"entropy": 0.5},
    }
    if i % 2:
        data.update(
            action_probabilities={"left": 0.1 + 0.2, "right": 0.7},
            q_values=[1e308, -1e-308, 0.1 + 0.2],
            state_values=-1e308,
            selected_action="right" if i % 4 == 1 else 3,
        )
    return data


def url(training_session_id: str, export_format: str) -> str:
    return f"/api/v1/sessions/{training_session_id}/metrics.{export_format}"


@pytest.fixture
def trainer(api_client, owner, make_token):
    return api_client(token=make_token(owner))


@pytest.fixture
def ingested(trainer, training_session) -> list[dict]:
    """40 points sent through the HTTP ingest API, as validation cleaned them (the reference)."""
    raw = [raw_point(i) for i in range(40)]
    for start in (0, 25):
        batch = {"points": raw[start : start + 25]}
        response = trainer.post(f"/api/v1/sessions/{training_session.pk}/ingest/", batch, format="json")
        assert response.status_code == 200, response.content
    training_session.refresh_from_db()
    return [metric_point_clean(point) for point in raw]


def download(client, training_session_id: str, export_format: str, **params):
    response = client.get(url(training_session_id, export_format), params)
    assert response.status_code == 200, response.content if not response.streaming else ""
    assert response.streaming
    # The test client closes the response once its content has been read, as servers do.
    return response, b"".join(response.streaming_content)


def same(a, b) -> bool:
    """Equal and of the same type (1e16 must not come back as the integer 10**16)."""
    return a == b and type(a) is type(b)


def expected_data(point: dict) -> dict:
    """The MetricsData object the history API and the JSON exports show for a cleaned point."""
    decision = point["decision"] or {}
    return {
        **{name: point[name] for name in MetricPoint.METRICS_DATA_FIELDS},
        "extra": point["extra"],
        **{name: decision.get(name) for name in DECISION_FIELDS},
        "stream": point["stream"],
        "seq": point["seq"],
    }


def assert_same_data(got: dict, want: dict) -> None:
    assert list(got) == list(want)
    for name, value in want.items():
        if isinstance(value, dict):
            assert got[name] == value and all(same(got[name][k], v) for k, v in value.items()), name
        elif isinstance(value, list):
            assert got[name] == value and all(same(a, b) for a, b in zip(got[name], value, strict=True)), name
        else:
            assert same(got[name], value), (name, got[name], value)


def parse_csv(body: bytes) -> tuple[list[str], list[list[str]]]:
    rows = list(csv.reader(io.StringIO(body.decode("utf-8"), newline="")))
    return rows[0], rows[1:]


def csv_value(name: str, cell: str):
    if cell == "":
        return "" if name in ("algorithm", "stream") else None
    if name in ("algorithm", "stream"):
        return cell
    if name in INT_FIELDS:
        return int(cell)
    return float(cell)


# --- Round trips --------------------------------------------------------------------------------


def test_csv_round_trip(api_client, owner, training_session, ingested):
    response, body = download(api_client(owner), training_session.pk, "csv")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="cartpole-dqn-metrics.csv"'
    header, rows = parse_csv(body)
    extra_keys = ["entropy", "kl/div", "a b.c:d"]
    assert training_session.extra_keys == extra_keys
    assert header == [*MetricPoint.METRICS_DATA_FIELDS, "stream", "seq", *(f"extra.{key}" for key in extra_keys)]
    assert len(rows) == len(ingested)
    for row, point in zip(rows, ingested, strict=True):
        for name, cell in zip(header, row, strict=True):
            if name.startswith("extra."):
                want = point["extra"].get(name.removeprefix("extra."))
            else:
                want = point[name]
            assert same(csv_value(name, cell), want), (name, cell, want)
    assert body.endswith(b"\r\n")


@pytest.mark.parametrize("export_format", ["json", "ndjson"])
def test_json_round_trip_equals_the_history_api(api_client, owner, training_session, ingested, export_format):
    client = api_client(owner)
    response, body = download(client, training_session.pk, export_format)
    if export_format == "json":
        assert response["Content-Type"] == "application/json"
        objects = json.loads(body)
    else:
        assert response["Content-Type"] == "application/x-ndjson"
        assert body.endswith(b"\n") and body.count(b"\n") == len(ingested)
        objects = [json.loads(line) for line in body.splitlines()]
    assert response["Content-Disposition"] == f'attachment; filename="cartpole-dqn-metrics.{export_format}"'
    assert len(objects) == len(ingested)
    for got, point in zip(objects, ingested, strict=True):
        assert_same_data(got, expected_data(point))
    history = client.get(f"/api/v1/sessions/{training_session.pk}/metrics/", {"limit": 100}).json()
    assert objects == [entry["data"] for entry in history]
    assert "策略梯度 🚀".encode() in body  # UTF-8, not \u escapes


def test_empty_exports_are_well_formed(api_client, owner, training_session):
    client = api_client(owner)
    _response, body = download(client, training_session.pk, "csv")
    assert parse_csv(body) == ([*MetricPoint.METRICS_DATA_FIELDS, "stream", "seq"], [])
    assert json.loads(download(client, training_session.pk, "json")[1]) == []
    assert download(client, training_session.pk, "ndjson")[1] == b""


# --- Filters and fields -------------------------------------------------------------------------


def test_episode_and_time_filters(api_client, owner, training_session, ingested):
    client = api_client(owner)
    response, body = download(client, training_session.pk, "csv", episode_from=5, episode_to=9)
    assert [int(row[1]) for row in parse_csv(body)[1]] == [5, 6, 7, 8, 9]
    assert response["Content-Disposition"] == 'attachment; filename="cartpole-dqn-metrics-episodes-5-9.csv"'
    response, body = download(client, training_session.pk, "ndjson", episode_from=30)
    assert [json.loads(line)["episode"] for line in body.splitlines()] == list(range(30, 40))
    assert response["Content-Disposition"] == 'attachment; filename="cartpole-dqn-metrics-episodes-30-end.ndjson"'
    _response, body = download(client, training_session.pk, "json", time_from=T0 + 0.0105, time_to=T0 + 0.0125)
    assert [obj["episode"] for obj in json.loads(body)] == [11, 12]
    response, body = download(client, training_session.pk, "json", episode_to=3, time_from=T0 + 0.0015)
    assert [obj["episode"] for obj in json.loads(body)] == [2, 3]
    assert response["Content-Disposition"] == 'attachment; filename="cartpole-dqn-metrics-episodes-start-3.json"'


def test_csv_fields_in_the_order_asked(api_client, owner, training_session, ingested):
    fields = "loss_value,extra.kl/div,algorithm,q_values,seq,extra,selected_action,extra.entropy"
    _response, body = download(api_client(owner), training_session.pk, "csv", fields=fields)
    header, rows = parse_csv(body)
    assert header == fields.split(",")
    for row, point in zip(rows, ingested, strict=True):
        decision = point["decision"] or {}
        assert same(csv_value("loss_value", row[0]), point["loss_value"])
        assert same(csv_value("extra.kl/div", row[1]), point["extra"].get("kl/div"))
        assert row[2] == point["algorithm"]
        assert (json.loads(row[3]) if row[3] else None) == decision.get("q_values")
        assert int(row[4]) == point["seq"]
        assert json.loads(row[5]) == point["extra"]
        selected = decision.get("selected_action")
        assert row[6] == ("" if selected is None else str(selected))
        assert float(row[7]) == point["extra"]["entropy"]


@pytest.mark.parametrize("export_format", ["json", "ndjson"])
def test_json_fields(api_client, owner, training_session, ingested, export_format):
    fields = "episode,extra.kl/div,q_values,algorithm"
    _response, body = download(api_client(owner), training_session.pk, export_format, fields=fields)
    objects = json.loads(body) if export_format == "json" else [json.loads(line) for line in body.splitlines()]
    for got, point in zip(objects, ingested, strict=True):
        extra = {"kl/div": point["extra"]["kl/div"]} if "kl/div" in point["extra"] else {}
        q_values = (point["decision"] or {}).get("q_values")
        want = {"episode": point["episode"], "extra": extra, "q_values": q_values, "algorithm": point["algorithm"]}
        assert got == want


def test_many_chunks_with_missing_values_at_row_starts(api_client, owner, training_session):
    # Past one read chunk (2,000 rows); loss_value is missing on every third row, so rows and
    # chunks start with an empty cell; the odd algorithm name arrives only in a later chunk.
    points = []
    for i in range(4500):
        point = metric_point_clean(
            {
                "stream": "s",
                "seq": i,
                "timestamp": T0 + i,
                "episode": i,
                "loss_value": None if i % 3 == 0 else i / 7,
                "algorithm": 'odd, "name"' if i == 3000 else "PPO",
                "extra": {"k": i * 0.1} if i % 2 else {},
            }
        )
        points.append(point)
    _metric_points_insert(training_session.pk, points)
    training_session.extra_keys = ["k"]
    training_session.save()
    client = api_client(owner)
    _response, body = download(client, training_session.pk, "csv", fields="loss_value,algorithm,extra.k,current_reward")
    header, rows = parse_csv(body)
    assert len(rows) == 4500
    for row, point in zip(rows, points, strict=True):
        assert same(csv_value("loss_value", row[0]), point["loss_value"])
        assert row[1] == point["algorithm"]
        assert same(csv_value("extra.k", row[2]), point["extra"].get("k"))
        assert row[3] == ""
    _response, body = download(client, training_session.pk, "json")
    assert [obj["seq"] for obj in json.loads(body)] == list(range(4500))


# --- Bad parameters ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"fields": "current_reward,nonsense"}, "fields"),
        ({"fields": " , "}, "fields"),
        ({"fields": "extra.unknown"}, "fields"),
        ({"episode_from": "x"}, "episode_from"),
        ({"episode_from": 9, "episode_to": 3}, "episode_to"),
        ({"time_from": "noon"}, "time_from"),
        ({"time_from": T0 + 5, "time_to": T0}, "time_to"),
    ],
)
@pytest.mark.parametrize("export_format", ["csv", "json", "ndjson"])
def test_bad_parameters_name_the_field(api_client, owner, training_session, params, field, export_format):
    response = api_client(owner).get(url(training_session.pk, export_format), params, HTTP_ACCEPT="text/csv")
    assert_api_error(response, 400, "validation_error", field)


# --- Who may download ---------------------------------------------------------------------------


@pytest.mark.parametrize("export_format", ["csv", "json", "ndjson"])
def test_strangers_anonymous_and_unknown_sessions_get_404(api_client, make_user, training_session, export_format):
    stranger = api_client(make_user("stranger"))
    for response in (
        stranger.get(url(training_session.pk, export_format), HTTP_ACCEPT="text/csv"),
        stranger.get(url(training_session.pk, export_format), {"fields": "nonsense"}),
        api_client().get(url(training_session.pk, export_format)),
        api_client(training_session.owner).get(url("no-such-run", export_format)),
    ):
        assert_api_error(response, 404, "not_found")


def test_staff_and_present_spectators_may_download_until_they_leave(
    api_client, make_user, make_room, training_session, ingested
):
    assert download(api_client(make_user("staffer", staff=True)), training_session.pk, "csv")[1]
    viewer = make_user("viewer")
    spectator = room_join(room=make_room(), visitor=Visitor(user=viewer)).spectator
    _response, body = download(api_client(viewer), training_session.pk, "json")
    assert len(json.loads(body)) == len(ingested)
    room_leave(spectator=spectator)
    assert_api_error(api_client(viewer).get(url(training_session.pk, "json")), 404, "not_found")


def test_anonymous_spectator_through_the_join_session(api_client, make_room, training_session, ingested):
    room = make_room()
    client = api_client()
    assert_api_error(client.get(url(training_session.pk, "csv")), 404, "not_found")
    assert client.post(f"/api/v1/rooms/{room.code}/join/", {"display_name": "Guest"}, format="json").status_code == 200
    _response, body = download(client, training_session.pk, "csv")
    assert len(parse_csv(body)[1]) == len(ingested)


def test_anonymous_spectator_with_the_visitor_token(api_client, make_room, training_session, ingested):
    room_join(room=make_room(), visitor=Visitor(anon_key=anon_key_for("token-2")))
    _response, body = download(api_client(), training_session.pk, "ndjson", visitor_token="token-2")
    assert body.count(b"\n") == len(ingested)
    response = api_client().get(url(training_session.pk, "ndjson"), {"visitor_token": "nope"})
    assert_api_error(response, 404, "not_found")


# --- Streaming ----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_asgi_streams_with_an_async_iterator(owner, training_session):
    from asgiref.sync import sync_to_async

    points = [metric_point_clean(raw_point(i)) for i in range(30)]
    await sync_to_async(_metric_points_insert)(training_session.pk, points)
    client = AsyncClient()
    await sync_to_async(client.force_login)(owner)
    for export_format in ("csv", "json", "ndjson"):
        response = await client.get(url(training_session.pk, export_format))
        assert response.status_code == 200 and response.streaming and response.is_async
        body = b"".join([chunk async for chunk in response.streaming_content])
        if export_format == "json":
            assert [obj["seq"] for obj in json.loads(body)] == list(range(30))
        elif export_format == "ndjson":
            assert body.count(b"\n") == 30
        else:
            assert len(parse_csv(body)[1]) == 30


@pytest.mark.django_db(transaction=True)
def test_export_outside_a_transaction(api_client, owner, training_session):
    # Autocommit (as in production): PostgreSQL's cursor must be held past the implicit commit.
    _metric_points_insert(training_session.pk, [metric_point_clean(raw_point(i)) for i in range(10)])
    _response, body = download(api_client(owner), training_session.pk, "ndjson")
    assert [json.loads(line)["seq"] for line in body.splitlines()] == list(range(10))
