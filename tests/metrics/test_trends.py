"""Trend analysis (``metrics/trends.py``) and its notes from ingest (``metric_points_append``)."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from metrics import events as metric_events
from metrics.ingest import metric_point_clean
from metrics.models import TrainingSession
from metrics.services import metric_points_append
from metrics.trends import (
    NEW_BEST,
    PLATEAU_ENDED,
    PLATEAU_STARTED,
    TrendConfig,
    TrendState,
    ema,
    ema_of_buckets,
    new_best_markers,
    trend_update,
)
from tests.support.live import point

CONFIG = TrendConfig(window=10, patience=50, min_delta=0.01)


def feed(rewards, *, start_episode=0, batch=50, config=CONFIG, state=None):
    """Feed rewards (one an episode) in batches; return the final state and every event."""
    state = state or TrendState()
    events = []
    points = [(start_episode + i, 1000.0 + i, reward) for i, reward in enumerate(rewards)]
    for i in range(0, len(points), batch):
        state, batch_events = trend_update(state, points[i : i + batch], config)
        events.extend(batch_events)
    return state, events


# --- EMA ---------------------------------------------------------------------------------------


def test_ema_seeds_with_the_first_value_and_skips_missing_ones():
    assert ema([], 0.5) == []
    assert ema([None, 4.0, None, 8.0, 0.0], 0.5) == [None, 4.0, 4.0, 6.0, 3.0]
    assert ema([1.0, 2.0, 3.0], 1.0) == [1.0, 2.0, 3.0]


def test_ema_of_one_point_buckets_is_the_ema():
    values = [3.0, -1.0, 4.0, 1.5, 9.0]
    assert ema_of_buckets(((value, 1) for value in values), 0.3) == pytest.approx(ema(values, 0.3))


def test_ema_of_buckets_weighs_a_bucket_like_its_points():
    # Four equal points move the average as far as the four-point bucket of that value.
    alpha = 0.2
    assert ema_of_buckets([(0.0, 1), (10.0, 4)], alpha)[-1] == pytest.approx(ema([0.0] + [10.0] * 4, alpha)[-1])


def test_config_alpha_and_settings(settings):
    assert TrendConfig(window=9).alpha == pytest.approx(0.2)
    settings.SPECTATOR_TREND_WINDOW = 4
    settings.SPECTATOR_PLATEAU_PATIENCE = 7
    settings.SPECTATOR_PLATEAU_MIN_DELTA = 0.5
    assert TrendConfig.from_settings() == TrendConfig(window=4, patience=7, min_delta=0.5)


# --- New best ------------------------------------------------------------------------------------


def test_new_bests_are_always_kept_and_announced_after_warmup_at_most_once_a_window():
    config = TrendConfig(window=4, patience=50, min_delta=0.01)
    state, events = trend_update(TrendState(), [(0, 1.0, 1.0), (1, 2.0, 3.0), (2, 3.0, 2.0)], config)
    assert events == []  # warming up (and the first batch only starts the record)
    assert (state.best_reward, state.best_reward_episode) == (3.0, 1)
    state, events = trend_update(state, [(3, 4.0, 2.5), (4, 5.0, 4.0), (5, 6.0, 5.0), (6, 7.0, 4.5)], config)
    (event,) = events  # one a batch: the batch's best
    assert (event.event, event.episode, event.timestamp) == (NEW_BEST, 5, 6.0)
    assert (event.reward, event.previous_best) == (5.0, 3.0)
    assert event.message() == "New best reward 5 at episode 5."
    state, events = trend_update(state, [(7, 8.0, 6.0)], config)
    assert events == [] and (state.best_reward, state.best_reward_episode) == (6.0, 7)  # too soon to announce
    state, events = trend_update(state, [(8, 9.0, 5.0), (9, 10.0, 7.0)], config)
    (event,) = events
    assert (event.episode, event.reward, event.previous_best) == (9, 7.0, 6.0)
    state, events = trend_update(state, [(10, 11.0, 8.0), (11, 12.0, None)], config)
    assert events == [] and state.best_reward == 8.0


def test_missing_rewards_change_nothing():
    state, events = trend_update(TrendState(), [(0, 1.0, None)], CONFIG)
    assert events == [] and state == TrendState()


# --- Plateaus ------------------------------------------------------------------------------------


def rise_flat_rise():
    wobble = [0.5, -0.5, 0.25, -0.25]
    rise = [i * 0.5 for i in range(200)]  # episodes 0-199: 0 → 99.5
    flat = [100 + wobble[i % 4] for i in range(300)]  # episodes 200-499
    again = [100 + i for i in range(100)]  # episodes 500-599
    return rise + flat + again


def test_plateau_starts_after_patience_and_ends_on_improvement():
    state, events = feed(rise_flat_rise())
    plateau = [event for event in events if event.event != NEW_BEST]
    assert [event.event for event in plateau] == [PLATEAU_STARTED, PLATEAU_ENDED]
    started, ended = plateau
    assert 200 <= started.since_episode <= 215
    assert started.episode - started.since_episode == CONFIG.patience
    assert started.message().startswith(f"Reward plateau: no real improvement since episode {started.since_episode}")
    assert 500 <= ended.episode <= 510 and ended.since_episode == started.since_episode
    assert state.plateau_since is None
    assert state.best_reward == 199 and state.best_reward_episode == 599


def test_plateau_state_survives_a_round_trip_through_the_database_shape():
    state, _events = feed(rise_flat_rise()[:400])
    assert state.plateau_since is not None
    restored = TrendState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert restored == state
    assert TrendState.from_dict({"unknown": 1}) == TrendState()


def test_same_events_whatever_the_batch_size():
    rewards = rise_flat_rise()
    _state, by_one = feed(rewards, batch=1)
    _state, by_many = feed(rewards, batch=128)
    plateau = [(e.event, e.episode, e.since_episode) for e in by_one if e.event != NEW_BEST]
    assert plateau == [(e.event, e.episode, e.since_episode) for e in by_many if e.event != NEW_BEST]


def test_noisy_steady_rewards_reach_a_plateau_and_stay_there():
    # Deterministic noise of amplitude 20 around 50: the EMA wanders but never really improves.
    rewards = [50 + 20 * ((i * 7919) % 13 - 6) / 6 for i in range(600)]
    _state, events = feed(rewards)
    plateau = [event.event for event in events if event.event != NEW_BEST]
    assert plateau == [PLATEAU_STARTED]


def test_no_plateau_during_warmup_or_when_episodes_go_back():
    config = TrendConfig(window=100, patience=5, min_delta=0.01)
    _state, events = feed([1.0] * 50, config=config)
    assert [e for e in events if e.event != NEW_BEST] == []
    state = TrendState(points=1000, ema=1.0, best_ema=1.0, best_ema_episode=900)
    _state, events = trend_update(state, [(10, 0.0, 1.0)], config)
    assert events == []


def test_new_best_markers():
    assert new_best_markers([]) == []
    assert new_best_markers([(0, 1.0), (1, 0.5), (2, 2.0), (3, 2.0), (4, 3.0)]) == [(2, 2.0), (4, 3.0)]


# --- From ingest: notes on the session's stream, state on the row ------------------------------


@pytest.fixture
def append(training_session, django_capture_on_commit_callbacks):
    """Append rewards as points (committed) and return the stream messages published for them."""
    layer = get_channel_layer()
    group = metric_events.session_group_name(training_session.pk)

    def run(rewards, *, start):
        points = [metric_point_clean(point(start + i, current_reward=reward)) for i, reward in enumerate(rewards)]
        # A channel for each batch: channels-redis can hand a reused test channel an old message.
        channel = async_to_sync(layer.new_channel)("test.")
        async_to_sync(layer.group_add)(group, channel)
        try:
            with django_capture_on_commit_callbacks(execute=True):
                metric_points_append(training_session=training_session, points=points)
            envelope = async_to_sync(layer.receive)(channel)
        finally:
            async_to_sync(layer.group_discard)(group, channel)
        return [json.loads(text) for _kind, text in envelope["items"]]

    return run


def notes(messages: list[dict]) -> list[dict]:
    return [message for message in messages if message["type"] == "training_status"]


def test_ingest_publishes_a_new_best_note_after_the_points(training_session, append, settings):
    settings.SPECTATOR_TREND_WINDOW = 2
    assert notes(append([1.0, 2.0], start=0)) == []
    messages = append([1.5, 7.25, 3.0], start=2)
    assert messages[-1]["type"] == "training_status"
    assert [m["type"] for m in messages[:-1]] == ["training_metrics"] * 3 + ["graph_update"]
    note = messages[-1]
    assert note["training_session_id"] == training_session.pk and note["status"] == "running"
    assert note["message"] == "New best reward 7.25 at episode 3."
    assert note["trend"] == {
        "event": "new_best",
        "episode": 3,
        "timestamp": 1_700_000_003.0,
        "reward": 7.25,
        "previous_best": 2.0,
        "since_episode": None,
    }
    session = TrainingSession.objects.get(pk=training_session.pk)
    assert (session.best_reward, session.best_reward_episode, session.plateau_since_episode) == (7.25, 3, None)
    assert session.trend["points"] == 5 and session.trend["best_announced_episode"] == 3
    assert "best_reward" not in session.trend


def test_ingest_announces_plateaus(training_session, append, settings):
    settings.SPECTATOR_TREND_WINDOW = 2
    settings.SPECTATOR_PLATEAU_PATIENCE = 5
    (started,) = notes(append([10.0] * 8, start=0))
    assert started["trend"]["event"] == "plateau_started" and started["trend"]["since_episode"] == 0
    assert started["trend"]["episode"] == 5
    assert TrainingSession.objects.get(pk=training_session.pk).plateau_since_episode == 0
    ended, best = notes(append([50.0], start=8))
    assert ended["trend"]["event"] == "plateau_ended" and best["trend"]["event"] == "new_best"
    assert ended["message"] == "Reward improving again at episode 8 (plateau since episode 0)."
    assert TrainingSession.objects.get(pk=training_session.pk).plateau_since_episode is None


def test_ingest_without_rewards_leaves_the_trend_alone(training_session, append):
    assert notes(append([None, None, None], start=0)) == []
    session = TrainingSession.objects.get(pk=training_session.pk)
    assert session.trend == {} and session.best_reward is None


def test_a_retried_batch_feeds_the_trend_once(training_session, django_capture_on_commit_callbacks):
    points = [metric_point_clean(point(i)) for i in range(4)]
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            metric_points_append(training_session=training_session, points=points)
    assert TrainingSession.objects.get(pk=training_session.pk).trend["points"] == 4
