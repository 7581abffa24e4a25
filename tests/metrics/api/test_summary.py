"""Run summaries and comparisons: ``GET /api/v1/sessions/<id>/summary/`` and ``GET /api/v1/compare/``.

Every value is checked against a computation in Python over the very points stored.
"""

from __future__ import annotations

import random
import statistics

import pytest

from metrics.ingest import metric_point_clean
from metrics.services import _metric_points_insert, metric_points_append, training_session_create
from rooms.access import Visitor
from rooms.services import anon_key_for, room_join, room_leave
from tests.api_errors import assert_api_error
from tests.support.live import point

T0 = 1_700_000_000.0
COMPARE = "/api/v1/compare/"


def summary_url(training_session_id: str) -> str:
    return f"/api/v1/sessions/{training_session_id}/summary/"


def run_points(n: int, *, seed: int, first_episode: int = 3) -> list[dict]:
    """A messy run: episodes with gaps and repeats, rewards and win rates sometimes missing,
    ties for the best reward, negative rewards."""
    rng = random.Random(seed)
    points, episode = [], first_episode
    for i in range(n):
        episode += rng.choice([0, 1, 1, 1, 2, 5])
        reward = None if rng.random() < 0.15 else round(rng.uniform(-50, 50) + episode * 0.1, 3)
        win_rate = None if rng.random() < 0.3 else rng.random()
        points.append(
            metric_point_clean(
                point(
                    i,
                    timestamp=T0 + i * 1.5 + rng.random(),
                    episode=episode,
                    current_reward=reward,
                    win_rate=win_rate,
                )
            )
        )
    # Two points share the best reward: the earlier episode is the one reported.
    best = max(p["current_reward"] for p in points if p["current_reward"] is not None) + 1
    points[n // 3]["current_reward"] = best
    points[2 * n // 3]["current_reward"] = best
    return points


def expected(points: list[dict], last: int) -> dict:
    """The summary computed in Python, independently of the SQL."""
    episodes = [p["episode"] for p in points]
    times = [p["timestamp"] for p in points]
    rewards = [(p["episode"], p["current_reward"]) for p in points if p["current_reward"] is not None]
    best = max(r for _, r in rewards)
    last_episode = max(episodes)
    recent = [r for e, r in rewards if e > last_episode - last]
    win_rates = [(p["win_rate"], p["episode"]) for p in points if p["win_rate"] is not None]
    duration = max(times) - min(times)
    return {
        "points": len(points),
        "episodes": len(set(episodes)),
        "first_episode": min(episodes),
        "last_episode": last_episode,
        "started_at": min(times),
        "last_point_at": max(times),
        "duration_seconds": duration,
        "episodes_per_hour": (last_episode - min(episodes)) * 3600 / duration,
        "best_reward": best,
        "best_reward_episode": min(e for e, r in rewards if r == best),
        "average_reward": statistics.fmean(r for _, r in rewards),
        "recent_episodes": last,
        "recent_average_reward": statistics.fmean(recent) if recent else None,
        "win_rate": win_rates[-1][0],
        "win_rate_episode": win_rates[-1][1],
    }


def assert_summary(body: dict, want: dict) -> None:
    for name, value in want.items():
        if isinstance(value, float):
            assert body[name] == pytest.approx(value, rel=1e-9, abs=1e-9), name
        else:
            assert body[name] == value, name


@pytest.fixture
def owner_client(api_client, owner):
    return api_client(owner)


@pytest.fixture
def stored(training_session) -> list[dict]:
    points = run_points(400, seed=11)
    _metric_points_insert(training_session.pk, points)
    return points


# --- Values ---------------------------------------------------------------------------------


@pytest.mark.parametrize("last", [1, 7, 100, 1_000_000])
def test_summary_matches_an_independent_computation(owner_client, training_session, stored, last):
    response = owner_client.get(summary_url(training_session.pk), {"last": last})
    assert response.status_code == 200, response.content
    body = response.json()
    assert_summary(body, expected(stored, last))
    assert (body["training_session_id"], body["name"], body["algorithm"]) == ("cartpole-dqn", "CartPole DQN", "DQN")
    assert (body["status"], body["owner"], body["extra_keys"]) == ("running", "owner", [])


def test_summary_of_points_that_came_through_ingest(owner_client, owner):
    """Ingest's trend analysis keeps the best reward on the session; the summary agrees with it."""
    session, _ = training_session_create(owner=owner, id="ingested", name="Ingested")
    points = run_points(150, seed=3)
    for first in range(0, len(points), 40):
        metric_points_append(training_session=session, points=points[first : first + 40])
    session.refresh_from_db()
    body = owner_client.get(summary_url(session.pk)).json()
    assert_summary(body, expected(points, 100))
    assert (body["best_reward"], body["best_reward_episode"]) == (session.best_reward, session.best_reward_episode)


def test_summary_reads_aggregates_not_rows(owner_client, training_session, stored, django_assert_max_num_queries):
    """A handful of aggregate queries, however long the run (a million points: about 0.3 s on SQLite)."""
    with django_assert_max_num_queries(10):
        assert owner_client.get(summary_url(training_session.pk)).status_code == 200


def test_summary_of_an_empty_run(owner_client, training_session):
    body = owner_client.get(summary_url(training_session.pk)).json()
    assert body["points"] == body["episodes"] == 0
    for name in (
        "first_episode",
        "last_episode",
        "started_at",
        "duration_seconds",
        "episodes_per_hour",
        "best_reward",
        "best_reward_episode",
        "average_reward",
        "recent_average_reward",
        "win_rate",
    ):
        assert body[name] is None, name


def test_summary_without_rewards_or_elapsed_time(owner_client, training_session):
    _metric_points_insert(
        training_session.pk,
        [metric_point_clean(point(i, timestamp=T0, episode=9, current_reward=None, win_rate=0.5)) for i in range(3)],
    )
    body = owner_client.get(summary_url(training_session.pk)).json()
    assert (body["points"], body["episodes"], body["duration_seconds"]) == (3, 1, 0.0)
    assert body["episodes_per_hour"] is None and body["best_reward"] is None and body["average_reward"] is None
    assert (body["win_rate"], body["win_rate_episode"]) == (0.5, 9)


def test_comparison_keeps_the_order_asked(owner_client, owner, training_session, stored):
    other, _ = training_session_create(owner=owner, id="other-run", name="Other", algorithm="PPO")
    other_points = run_points(90, seed=29, first_episode=0)
    _metric_points_insert(other.pk, other_points)
    response = owner_client.get(COMPARE, {"sessions": f"other-run,{training_session.pk}", "last": 20})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["last"] == 20
    assert [run["training_session_id"] for run in body["sessions"]] == ["other-run", training_session.pk]
    assert_summary(body["sessions"][0], expected(other_points, 20))
    assert_summary(body["sessions"][1], expected(stored, 20))


def test_comparison_takes_the_parameter_repeated(owner_client, owner, training_session):
    training_session_create(owner=owner, id="second")
    response = owner_client.get(f"{COMPARE}?sessions={training_session.pk}&sessions=second")
    assert response.status_code == 200, response.content
    assert [run["training_session_id"] for run in response.json()["sessions"]] == [training_session.pk, "second"]


# --- Bad parameters --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "sessions"),
        ({"sessions": ""}, "sessions"),
        ({"sessions": "a"}, "sessions"),
        ({"sessions": "a,a, a"}, "sessions"),
        ({"sessions": "a,b,c,d,e"}, "sessions"),
        ({"sessions": "a,b", "last": "0"}, "last"),
        ({"sessions": "a,b", "last": "many"}, "last"),
    ],
)
def test_comparison_bad_parameters_name_the_field(owner_client, params, field):
    assert_api_error(owner_client.get(COMPARE, params), 400, "validation_error", field)


@pytest.mark.parametrize("last", ["0", "-1", "x", "1000001"])
def test_summary_bad_last_names_the_field(owner_client, training_session, last):
    response = owner_client.get(summary_url(training_session.pk), {"last": last})
    assert_api_error(response, 400, "validation_error", "last")


# --- Who may read them -------------------------------------------------------------------------


def test_strangers_see_404_as_for_a_missing_session(api_client, make_user, owner, training_session, stored):
    stranger_user = make_user("stranger")
    stranger = api_client(stranger_user)
    hidden = stranger.get(summary_url(training_session.pk))
    missing = stranger.get(summary_url("no-such-run"))
    assert_api_error(hidden, 404, "not_found")
    assert hidden.json() == missing.json()
    assert_api_error(stranger.get(summary_url(training_session.pk), {"last": "x"}), 404, "not_found")
    assert_api_error(api_client().get(summary_url(training_session.pk)), 404, "not_found")

    training_session_create(owner=stranger_user, id="strangers-run")
    forbidden = stranger.get(COMPARE, {"sessions": f"strangers-run,{training_session.pk}"})
    absent = stranger.get(COMPARE, {"sessions": "strangers-run,nothing-here"})
    assert_api_error(forbidden, 404, "not_found")
    assert_api_error(absent, 404, "not_found")
    assert forbidden.json()["detail"] == f"No such training session: {training_session.pk}."
    assert absent.json()["detail"] == "No such training session: nothing-here."
    assert "CartPole" not in forbidden.content.decode()


def test_present_spectators_may_compare_until_they_leave(api_client, make_user, make_room, owner, training_session):
    other, _ = training_session_create(owner=owner, id="other-run")
    viewer = make_user("viewer")
    client = api_client(viewer)
    params = {"sessions": f"{training_session.pk},other-run"}
    spectator = room_join(room=make_room(), visitor=Visitor(user=viewer)).spectator
    assert client.get(summary_url(training_session.pk)).status_code == 200
    # Watching one of the two runs is not enough to compare both.
    assert_api_error(client.get(COMPARE, params), 404, "not_found")
    other_spectator = room_join(room=make_room(training_session=other), visitor=Visitor(user=viewer)).spectator
    assert client.get(COMPARE, params).status_code == 200
    room_leave(spectator=spectator)
    room_leave(spectator=other_spectator)
    assert_api_error(client.get(summary_url(training_session.pk)), 404, "not_found")


def test_anonymous_spectator_with_the_visitor_token(api_client, make_room, training_session, stored):
    room_join(room=make_room(), visitor=Visitor(anon_key=anon_key_for("token-3")))
    body = api_client().get(summary_url(training_session.pk), {"visitor_token": "token-3"}).json()
    assert body["points"] == len(stored)
    assert_api_error(api_client().get(summary_url(training_session.pk), {"visitor_token": "nope"}), 404, "not_found")


def test_staff_may_compare_any_sessions(api_client, make_user, owner, training_session):
    training_session_create(owner=owner, id="other-run")
    staff = api_client(make_user("staffer", staff=True))
    response = staff.get(COMPARE, {"sessions": f"{training_session.pk},other-run"})
    assert response.status_code == 200, response.content


def test_schema_documents_both_operations(api_client, db):
    schema = api_client().get("/api/schema/?format=json").json()
    compare = schema["paths"]["/api/v1/compare/"]["get"]
    assert {parameter["name"] for parameter in compare["parameters"]} >= {"sessions", "last"}
    assert {"200", "400", "404"} <= set(compare["responses"])
    summary = schema["paths"]["/api/v1/sessions/{training_session_id}/summary/"]["get"]
    ref = summary["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    properties = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]["properties"]
    wanted = {"best_reward", "average_reward", "recent_average_reward", "win_rate", "episodes_per_hour"}
    assert wanted <= set(properties)
