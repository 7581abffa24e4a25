"""The downsampled history API: ``GET /api/v1/sessions/<id>/history/``."""

from __future__ import annotations

import math
import random

import pytest

from metrics import selectors
from metrics.ingest import metric_point_clean
from metrics.services import _metric_points_insert, metric_points_append
from rooms.access import Visitor
from rooms.services import anon_key_for, room_join, room_leave
from tests.api_errors import assert_api_error
from tests.support.live import point

T0 = 1_700_000_000.0


def url(training_session_id: str) -> str:
    return f"/api/v1/sessions/{training_session_id}/history/"


def store(training_session, n: int, *, spike_at: int | None = None, extra: bool = False) -> list[dict]:
    """``n`` points fast (no trend analysis): a noisy sine, optional spike, loss on even points."""
    rng = random.Random(5)
    points = []
    for i in range(n):
        points.append(
            metric_point_clean(
                point(
                    i,
                    timestamp=T0 + i * 0.5,
                    current_reward=math.sin(i / 300) + rng.uniform(-0.2, 0.2),
                    loss_value=1 / (i + 1) if i % 2 == 0 else None,
                    episode_length=100 + i % 37,
                    extra={"entropy": rng.random()} if extra else {},
                )
            )
        )
    if spike_at is not None:
        points[spike_at]["current_reward"] = 1e6
    _metric_points_insert(training_session.pk, points)
    if extra:
        training_session.extra_keys = ["entropy"]
        training_session.save()
    return points


@pytest.fixture
def owner_client(api_client, owner):
    return api_client(owner)


def get(client, training_session, **params):
    response = client.get(url(training_session.pk), params)
    assert response.status_code == 200, response.content
    return response.json()


# --- Shape and downsampling --------------------------------------------------------------------


def test_small_ranges_come_back_whole(owner_client, training_session):
    points = store(training_session, 10)
    body = get(owner_client, training_session, metrics="current_reward,loss_value")
    assert body["count"] == 10 and body["downsampled"] is False and body["x"] == "episode"
    assert body["x_range"] == [0, 9] and body["points"] == 1000 and body["smooth"] is None
    reward = body["series"]["current_reward"]
    assert reward["data"] == [[p["episode"], p["current_reward"]] for p in points]
    assert reward["count"] == 10 and "smoothed" not in reward
    assert body["series"]["loss_value"]["data"] == [[i, 1 / (i + 1)] for i in range(0, 10, 2)]
    assert "new_best" not in body["series"]["loss_value"]


@pytest.mark.parametrize("threshold", [0, 10**9], ids=["sql", "python"])
def test_a_spike_survives_downsampling(owner_client, training_session, monkeypatch, threshold):
    monkeypatch.setitem(selectors.PYTHON_DOWNSAMPLE_ROWS, "sqlite", threshold)
    monkeypatch.setitem(selectors.PYTHON_DOWNSAMPLE_ROWS, "postgresql", threshold)
    store(training_session, 20_000, spike_at=12_345)
    body = get(owner_client, training_session, metrics="current_reward,episode_length", points=200)
    assert body["count"] == 20_000 and body["downsampled"] is True
    reward = body["series"]["current_reward"]
    assert len(reward["data"]) <= 200 and reward["count"] == 20_000
    assert [12_345, 1e6] in reward["data"]
    xs = [x for x, _ in reward["data"]]
    assert xs == sorted(xs) and xs[0] >= 0 and xs[-1] <= 19_999
    lengths = body["series"]["episode_length"]["data"]
    assert max(y for _, y in lengths) == 136 and min(y for _, y in lengths) == 100


def test_sql_and_python_downsampling_agree(owner_client, training_session, monkeypatch):
    store(training_session, 5000, extra=True)
    params = {"metrics": "current_reward,loss_value,entropy", "points": 300, "smooth": 0.05}
    bodies = []
    for threshold in (0, 10**9):
        monkeypatch.setitem(selectors.PYTHON_DOWNSAMPLE_ROWS, "sqlite", threshold)
        monkeypatch.setitem(selectors.PYTHON_DOWNSAMPLE_ROWS, "postgresql", threshold)
        bodies.append(get(owner_client, training_session, **params))
    sql, python = bodies
    for name in ("current_reward", "loss_value", "entropy"):
        assert sql["series"][name]["data"] == python["series"][name]["data"], name
        assert sql["series"][name]["count"] == python["series"][name]["count"]
        assert [x for x, _ in sql["series"][name]["smoothed"]] == [x for x, _ in python["series"][name]["smoothed"]]
        assert [y for _, y in sql["series"][name]["smoothed"]] == pytest.approx(
            [y for _, y in python["series"][name]["smoothed"]], rel=1e-9
        )
    assert sql["series"]["current_reward"]["new_best"] == python["series"]["current_reward"]["new_best"]


def test_time_axis_and_ranges(owner_client, training_session):
    store(training_session, 3000)
    body = get(owner_client, training_session, metrics="current_reward", x="time", points=100)
    assert body["x"] == "time" and body["x_range"] == [T0, T0 + 2999 * 0.5]
    assert all(T0 <= x <= T0 + 1500 for x, _ in body["series"]["current_reward"]["data"])
    body = get(owner_client, training_session, metrics="current_reward", episode_from=100, episode_to=199)
    assert body["count"] == 100 and [x for x, _ in body["series"]["current_reward"]["data"]] == list(range(100, 200))
    body = get(owner_client, training_session, metrics="current_reward", time_from=T0 + 50, time_to=T0 + 99.5)
    assert body["count"] == 100 and body["x_range"] == [100, 199]
    body = get(
        owner_client, training_session, metrics="current_reward", time_from="2023-11-14T22:13:20Z", time_to=T0 + 1
    )
    assert body["count"] == 3  # the ISO time is T0
    body = get(owner_client, training_session, metrics="current_reward", episode_from=10, time_to=T0 + 9)
    assert body["count"] == 9 and body["x_range"] == [10, 18]
    downsampled = get(owner_client, training_session, metrics="current_reward", episode_from=500, points=50)
    assert downsampled["count"] == 2500
    assert all(500 <= x <= 2999 for x, _ in downsampled["series"]["current_reward"]["data"])


def test_empty_range(owner_client, training_session):
    store(training_session, 10)
    body = get(owner_client, training_session, metrics="current_reward", episode_from=50)
    assert body["count"] == 0 and body["x_range"] is None
    assert body["series"]["current_reward"] == {"count": 0, "data": [], "new_best": []}


def test_smoothing_is_the_ema_of_the_raw_points(owner_client, training_session):
    points = store(training_session, 50)
    body = get(owner_client, training_session, metrics="current_reward", smooth=0.25)
    smoothed = body["series"]["current_reward"]["smoothed"]
    expected = points[0]["current_reward"]
    for p, (x, y) in zip(points, smoothed, strict=True):
        expected = expected + 0.25 * (p["current_reward"] - expected)
        assert x == p["episode"] and y == pytest.approx(expected)
    assert body["smooth"] == 0.25


def test_downsampled_smoothing_follows_the_raw_ema(owner_client, training_session):
    # Per bucket the EMA uses the bucket's mean in place of its points' order: close, not exact.
    points = store(training_session, 20_000)
    body = get(owner_client, training_session, metrics="current_reward", smooth=0.01, points=400)
    smoothed = dict(map(tuple, body["series"]["current_reward"]["smoothed"]))
    assert len(smoothed) == 200
    raw = {}
    average = points[0]["current_reward"]
    for p in points:
        average += 0.01 * (p["current_reward"] - average)
        raw[p["episode"]] = average
    for x, y in smoothed.items():
        assert y == pytest.approx(raw[x], abs=0.05)  # the curve spans about 2.4


def test_new_best_markers_and_trend(owner_client, training_session, django_capture_on_commit_callbacks):
    rewards = [1.0, 3.0, 2.0, 5.0, 5.0, 4.0, 8.0]
    points = [metric_point_clean(point(i, current_reward=r)) for i, r in enumerate(rewards)]
    with django_capture_on_commit_callbacks(execute=True):
        metric_points_append(training_session=training_session, points=points[:2])
        metric_points_append(training_session=training_session, points=points[2:])
    body = get(owner_client, training_session, metrics="current_reward")
    assert body["series"]["current_reward"]["new_best"] == [[1, 3.0], [3, 5.0], [6, 8.0]]
    assert body["trend"] == {
        "metric": "current_reward",
        "best_reward": 8.0,
        "best_reward_episode": 6,
        "plateau": False,
        "plateau_since_episode": None,
        "ema": body["trend"]["ema"],
    }
    assert isinstance(body["trend"]["ema"], float)


def test_custom_scalars_by_name_or_prefixed(owner_client, training_session):
    points = store(training_session, 20, extra=True)
    body = get(owner_client, training_session, metrics="entropy,extra.entropy")
    expected = [[p["episode"], p["extra"]["entropy"]] for p in points]
    assert body["series"]["entropy"]["data"] == expected
    assert body["series"]["extra.entropy"]["data"] == expected


def test_metrics_are_deduplicated_in_order(owner_client, training_session):
    store(training_session, 3)
    body = get(owner_client, training_session, metrics=" loss_value, current_reward,loss_value ")
    assert list(body["series"]) == ["loss_value", "current_reward"]


# --- Bad parameters: 400 naming the parameter --------------------------------------------------


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "metrics"),
        ({"metrics": ""}, "metrics"),
        ({"metrics": " , "}, "metrics"),
        ({"metrics": "current_reward,nonsense"}, "metrics"),
        ({"metrics": "algorithm"}, "metrics"),
        ({"metrics": "extra.unknown"}, "metrics"),
        ({"metrics": ",".join(f"m{i}" for i in range(17))}, "metrics"),
        ({"metrics": "current_reward", "points": 1}, "points"),
        ({"metrics": "current_reward", "points": 10_001}, "points"),
        ({"metrics": "current_reward", "points": "many"}, "points"),
        ({"metrics": "current_reward", "x": "step"}, "x"),
        ({"metrics": "current_reward", "episode_from": "first"}, "episode_from"),
        ({"metrics": "current_reward", "episode_from": -1}, "episode_from"),
        ({"metrics": "current_reward", "episode_to": 1.5}, "episode_to"),
        ({"metrics": "current_reward", "episode_from": 5, "episode_to": 4}, "episode_to"),
        ({"metrics": "current_reward", "time_from": "yesterday"}, "time_from"),
        ({"metrics": "current_reward", "time_to": "nan"}, "time_to"),
        ({"metrics": "current_reward", "time_to": "inf"}, "time_to"),
        ({"metrics": "current_reward", "time_from": T0 + 1, "time_to": T0}, "time_to"),
        ({"metrics": "current_reward", "smooth": 0}, "smooth"),
        ({"metrics": "current_reward", "smooth": 1.5}, "smooth"),
        ({"metrics": "current_reward", "smooth": "nan"}, "smooth"),
        ({"metrics": "current_reward", "smooth": "lots"}, "smooth"),
    ],
)
def test_bad_parameters_name_the_field(owner_client, training_session, params, field):
    training_session.extra_keys = ["entropy"]
    training_session.save()
    assert_api_error(owner_client.get(url(training_session.pk), params), 400, "validation_error", field)


# --- Who may read it ---------------------------------------------------------------------------


def test_strangers_and_unknown_sessions_see_404_before_any_validation(api_client, make_user, training_session):
    stranger = api_client(make_user("stranger"))
    for response in (
        stranger.get(url(training_session.pk), {"metrics": "current_reward"}),
        stranger.get(url(training_session.pk), {"points": "bad"}),
        api_client().get(url(training_session.pk), {"metrics": "current_reward"}),
        api_client(training_session.owner).get(url("no-such-run"), {"metrics": "current_reward"}),
    ):
        assert_api_error(response, 404, "not_found")


def test_present_spectators_may_read_until_they_leave(api_client, make_user, make_room, training_session):
    store(training_session, 5)
    viewer = make_user("viewer")
    spectator = room_join(room=make_room(), visitor=Visitor(user=viewer)).spectator
    assert api_client(viewer).get(url(training_session.pk), {"metrics": "current_reward"}).status_code == 200
    room_leave(spectator=spectator)
    assert_api_error(api_client(viewer).get(url(training_session.pk), {"metrics": "current_reward"}), 404, "not_found")


def test_anonymous_spectator_with_the_visitor_token(api_client, make_room, training_session):
    store(training_session, 5)
    room_join(room=make_room(), visitor=Visitor(anon_key=anon_key_for("token-1")))
    params = {"metrics": "current_reward", "visitor_token": "token-1"}
    assert api_client().get(url(training_session.pk), params).json()["count"] == 5
    assert_api_error(api_client().get(url(training_session.pk), {**params, "visitor_token": "x"}), 404, "not_found")


def test_staff_may_read_any_session(api_client, make_user, training_session):
    store(training_session, 5)
    staff = api_client(make_user("staffer", staff=True))
    assert staff.get(url(training_session.pk), {"metrics": "current_reward"}).status_code == 200
