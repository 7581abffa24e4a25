"""Trend analysis of a reward curve: EMA smoothing, plateau detection and new bests.

Pure functions over numbers. Ingest keeps one ``TrendState`` per training session (on the
``TrainingSession`` row) and feeds it each batch, so detecting a trend never re-reads the
history; the history API uses the same EMA to draw smoothed curves.

A plateau starts when the reward's EMA has not beaten its best by more than ``min_delta``
(relative to the larger of that best and the reward's typical deviation from its EMA) for
``patience`` episodes, and ends at the first such improvement. Every new best reward is
recorded, but announced only once ``window`` rewards have been seen and at most once every
``window`` episodes: early in training nearly every batch sets one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace

from django.conf import settings

NEW_BEST = "new_best"
PLATEAU_STARTED = "plateau_started"
PLATEAU_ENDED = "plateau_ended"


@dataclass(frozen=True)
class TrendConfig:
    window: int = 100
    """EMA span in points (each new point weighs ``2 / (window + 1)``); also the warm-up before
    plateaus and new bests are announced, and the least episodes between two new-best notes."""
    patience: int = 500
    """Episodes without a real improvement of the EMA before a plateau starts."""
    min_delta: float = 0.01
    """The smallest improvement that counts, relative to max(|best EMA|, noise)."""

    @property
    def alpha(self) -> float:
        return 2.0 / (self.window + 1)

    @classmethod
    def from_settings(cls) -> TrendConfig:
        return cls(
            window=getattr(settings, "SPECTATOR_TREND_WINDOW", cls.window),
            patience=getattr(settings, "SPECTATOR_PLATEAU_PATIENCE", cls.patience),
            min_delta=getattr(settings, "SPECTATOR_PLATEAU_MIN_DELTA", cls.min_delta),
        )


@dataclass
class TrendState:
    """What the detector remembers between batches (a few numbers per session)."""

    points: int = 0
    ema: float | None = None
    noise: float = 0.0
    """EMA of |reward - EMA|: how much the reward wanders around its trend."""
    best_ema: float | None = None
    best_ema_episode: int | None = None
    best_reward: float | None = None
    best_reward_episode: int | None = None
    plateau_since: int | None = None
    """Episode of the last real improvement while on a plateau, else None."""
    best_announced_episode: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrendState:
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        return cls(**known)


@dataclass(frozen=True)
class TrendEvent:
    event: str
    episode: int
    timestamp: float | None
    reward: float | None = None
    """new_best: the new best reward; plateau events: the reward's EMA."""
    previous_best: float | None = None
    since_episode: int | None = None
    """Plateau events: the episode of the last real improvement."""

    def message(self) -> str:
        if self.event == NEW_BEST:
            return f"New best reward {self.reward:.6g} at episode {self.episode}."
        if self.event == PLATEAU_STARTED:
            return (
                f"Reward plateau: no real improvement since episode {self.since_episode} "
                f"({self.episode - self.since_episode} episodes)."
            )
        return f"Reward improving again at episode {self.episode} (plateau since episode {self.since_episode})."

    def to_dict(self) -> dict:
        return {
            "event": self.event,
            "episode": self.episode,
            "timestamp": self.timestamp,
            "reward": self.reward,
            "previous_best": self.previous_best,
            "since_episode": self.since_episode,
        }


def ema(values: Iterable[float | None], alpha: float) -> list[float | None]:
    """Exponential moving average, seeded with the first value; None values keep the average."""
    out = []
    average = None
    for value in values:
        if value is not None:
            average = value if average is None else average + alpha * (value - average)
        out.append(average)
    return out


def ema_of_buckets(buckets: Iterable[tuple[float, int]], alpha: float) -> list[float]:
    """The EMA at the end of each bucket, given each bucket's ``(mean, count)``.

    ``count`` points of weight ``alpha`` move the average by ``1 - (1 - alpha) ** count`` of
    the way to the bucket's values; using their mean in place of their order is the
    approximation that lets a downsampled curve be smoothed without reading every point.
    """
    out = []
    average = None
    for mean, count in buckets:
        if average is None:
            average = mean
        else:
            average += (1.0 - (1.0 - alpha) ** count) * (mean - average)
        out.append(average)
    return out


def trend_update(
    state: TrendState, points: Iterable[tuple[int, float | None, float | None]], config: TrendConfig
) -> tuple[TrendState, list[TrendEvent]]:
    """Feed ``(episode, timestamp, reward)`` points (in arrival order) to the detector.

    Returns the new state and the events, in episode order: at most one ``new_best`` (the
    batch's best, when it beats the best before the batch and may be announced) and any
    plateau starts and ends.
    """
    state = replace(state)
    alpha = config.alpha
    previous_best = state.best_reward
    best_point = None
    events = []
    for episode, timestamp, reward in points:
        if reward is None:
            continue
        state.points += 1
        if state.best_reward is None or reward > state.best_reward:
            state.best_reward, state.best_reward_episode = reward, episode
            if previous_best is not None:
                best_point = (episode, timestamp, reward)
        if state.ema is None:
            state.ema = reward
        else:
            state.noise += alpha * (abs(reward - state.ema) - state.noise)
            state.ema += alpha * (reward - state.ema)
        if state.best_ema is None:
            state.best_ema, state.best_ema_episode = state.ema, episode
        elif state.ema > state.best_ema + config.min_delta * max(abs(state.best_ema), state.noise):
            if state.plateau_since is not None:
                ended = TrendEvent(PLATEAU_ENDED, episode, timestamp, state.ema, since_episode=state.plateau_since)
                events.append(ended)
                state.plateau_since = None
            state.best_ema, state.best_ema_episode = state.ema, episode
        elif (
            state.plateau_since is None
            and state.points >= config.window
            and episode - state.best_ema_episode >= config.patience
        ):
            state.plateau_since = state.best_ema_episode
            events.append(TrendEvent(PLATEAU_STARTED, episode, timestamp, state.ema, since_episode=state.plateau_since))
    if best_point is not None and state.points >= config.window:
        episode, timestamp, reward = best_point
        last = state.best_announced_episode
        if last is None or episode - last >= config.window:
            state.best_announced_episode = episode
            events.append(TrendEvent(NEW_BEST, episode, timestamp, reward, previous_best=previous_best))
            events.sort(key=lambda event: event.episode)
    return state, events


def new_best_markers(points: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points of a curve (in x order) that beat every earlier one: the 'new best' markers.

    The first point starts the record without being marked.
    """
    markers = []
    best = None
    for x, y in points:
        if best is None:
            best = y
        elif y > best:
            best = y
            markers.append((x, y))
    return markers
