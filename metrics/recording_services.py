"""Writes of recorded episodes: appending records, sampling, rewards, retention, settings.

Every change that several server processes may race on is a conditional write on one row
(an ``UPDATE … WHERE discarded_at IS NULL``, a ``DELETE`` by id): exactly one process wins it
and only the winner deletes the file, so sweeps running at once neither repeat work nor
trip over a file another one removed.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import F, Sum, Value
from django.db.models.functions import Coalesce, Greatest, Least
from django.utils import timezone

from metrics import recordings
from metrics.models import MetricPoint, RecordedEpisode, RecordingPolicy, TrainingSession
from metrics.recording_selectors import (
    Mode,
    Policy,
    policy_cache_key,
    policy_default,
    policy_of,
    recording_policy_for,
)

logger = logging.getLogger(__name__)

# A file with no kept episode behind it (a record that lost a race with a sweep) is removed
# once it has not been written for this long.
ORPHAN_GRACE_SECONDS = 120
# Episodes whose reward is looked up again per sweep (a metric point that raced the recording).
REWARD_BACKFILL_LIMIT = 500


@dataclass
class _EpisodeBatch:
    """The records of one episode in one batch, and what they add to its counters."""

    records: list[bytes] = field(default_factory=list)
    decisions: int = 0
    frames: int = 0
    size: int = 0
    first_step: int | None = None
    last_step: int | None = None
    started_at: float | None = None
    ended_at: float | None = None

    def add(self, record: bytes, *, step, timestamp, frame: bool) -> None:
        self.records.append(record)
        self.size += len(record)
        if frame:
            self.frames += 1
        else:
            self.decisions += 1
        if isinstance(step, int):
            self.first_step = step if self.first_step is None else min(self.first_step, step)
            self.last_step = step if self.last_step is None else max(self.last_step, step)
        if isinstance(timestamp, (int, float)):
            self.started_at = timestamp if self.started_at is None else min(self.started_at, timestamp)
            self.ended_at = timestamp if self.ended_at is None else max(self.ended_at, timestamp)


@dataclass(frozen=True)
class AppendResult:
    recorded: int = 0
    skipped: int = 0
    episodes: tuple[int, ...] = ()


def _decision_of_point(point: dict) -> dict | None:
    decision = point.get("decision") or {}
    if decision.get("action_probabilities") is None and decision.get("q_values") is None:
        return None
    return {
        **decision,
        "episode": point["episode"],
        "step": None,
        "timestamp": point["timestamp"],
        "stream": point["stream"],
        "seq": point["seq"],
    }


def recording_append(
    *,
    training_session_id: str,
    decisions: Iterable[dict] = (),
    frames: Iterable[tuple[dict, bytes]] = (),
    points: Iterable[dict] = (),
) -> AppendResult:
    """Record validated decisions, frames and metric points' decisions, as the session's policy samples them.

    Records without an episode cannot be replayed and are skipped. Each episode gets one
    ``O_APPEND`` write and one counter update a batch; an episode discarded earlier (sampling,
    retention) stays discarded. Metric points' rewards go to ``recording_rewards_note``.
    """
    policy = recording_policy_for(training_session_id)
    points = list(points)
    rewards = [(p["episode"], p["current_reward"]) for p in points if p.get("current_reward") is not None]
    if policy.mode == Mode.OFF:
        return AppendResult(skipped=len(points))
    batches: dict[int, _EpisodeBatch] = {}
    skipped = 0

    def batch_for(episode) -> _EpisodeBatch | None:
        if not isinstance(episode, int) or not policy.samples(episode):
            return None
        return batches.setdefault(episode, _EpisodeBatch())

    for decision in (*decisions, *filter(None, map(_decision_of_point, points))):
        batch = batch_for(decision.get("episode"))
        if batch is None:
            skipped += 1
            continue
        batch.add(
            recordings.decision_record(decision),
            step=decision.get("step"),
            timestamp=decision.get("timestamp"),
            frame=False,
        )
    for header, image in frames:
        batch = batch_for(header.get("episode"))
        if batch is None:
            skipped += 1
            continue
        batch.add(
            recordings.frame_record(header, image),
            step=header.get("step"),
            timestamp=header.get("timestamp"),
            frame=True,
        )
    recorded = 0
    stored = []
    for episode, batch in batches.items():
        if _episode_append(training_session_id, episode, batch, policy):
            recorded += batch.decisions + batch.frames
            stored.append(episode)
        else:
            skipped += batch.decisions + batch.frames
    if rewards:
        recording_rewards_note(training_session_id=training_session_id, rewards=rewards, policy=policy)
    return AppendResult(recorded=recorded, skipped=skipped, episodes=tuple(stored))


def _counter_updates(batch: _EpisodeBatch, now) -> dict:
    updates = {
        "decisions": F("decisions") + batch.decisions,
        "frames": F("frames") + batch.frames,
        "bytes": F("bytes") + batch.size,
        "updated_at": now,
    }
    # Least/Greatest are NULL on SQLite when an argument is: start from the new value.
    for name, value, pick in (
        ("first_step", batch.first_step, Least),
        ("last_step", batch.last_step, Greatest),
        ("started_at", batch.started_at, Least),
        ("ended_at", batch.ended_at, Greatest),
    ):
        if value is not None:
            updates[name] = pick(Coalesce(F(name), Value(value)), Value(value))
    return updates


def _episode_append(training_session_id: str, episode: int, batch: _EpisodeBatch, policy: Policy) -> bool:
    """Count the batch on the episode's row (creating it), then append it to the file; False if discarded."""
    now = timezone.now()
    live = RecordedEpisode.objects.filter(
        training_session_id=training_session_id, episode=episode, discarded_at__isnull=True
    )
    if not live.update(**_counter_updates(batch, now)):
        if not _episode_create(training_session_id, episode, batch, policy):
            return False
    # After the row: a sweep that discards the episode between the two leaves a file with no
    # kept row, which the orphan pass removes.
    recordings.append(recordings.episode_path(training_session_id, episode), b"".join(batch.records))
    return True


def _episode_create(training_session_id: str, episode: int, batch: _EpisodeBatch, policy: Policy) -> bool:
    reward = (
        MetricPoint.objects.filter(
            training_session_id=training_session_id, episode=episode, current_reward__isnull=False
        )
        .order_by("-id")
        .values_list("current_reward", flat=True)
        .first()
    )
    try:
        with transaction.atomic():
            RecordedEpisode.objects.create(
                training_session_id=training_session_id,
                episode=episode,
                decisions=batch.decisions,
                frames=batch.frames,
                bytes=batch.size,
                first_step=batch.first_step,
                last_step=batch.last_step,
                started_at=batch.started_at,
                ended_at=batch.ended_at,
                reward=reward,
                path=recordings.episode_path(training_session_id, episode),
            )
    except IntegrityError:
        # Another process created it meanwhile (count there), or it was discarded (skip).
        return bool(
            RecordedEpisode.objects.filter(
                training_session_id=training_session_id, episode=episode, discarded_at__isnull=True
            ).update(**_counter_updates(batch, timezone.now()))
        )
    # A new episode began: keep the session inside its byte budget, and rank it if it has a reward.
    _budget_enforce(training_session_id, policy.max_bytes)
    if reward is not None and policy.mode == Mode.BEST_WORST:
        _best_worst_prune(training_session_id, policy.keep)
    return True


def recording_rewards_note(
    *, training_session_id: str, rewards: list[tuple[int, float]], policy: Policy | None = None
) -> int:
    """Set the reward of recorded episodes from their metric points; best_worst then prunes.

    Returns how many episodes got a new reward.
    """
    if not rewards:
        return 0
    policy = policy or recording_policy_for(training_session_id)
    latest = dict(rewards)
    rows = RecordedEpisode.objects.filter(
        training_session_id=training_session_id,
        discarded_at__isnull=True,
        episode__gte=min(latest),
        episode__lte=max(latest),
    ).values_list("pk", "episode", "reward")
    changed = 0
    for pk, episode, reward in rows:
        if episode in latest and latest[episode] != reward:
            changed += RecordedEpisode.objects.filter(pk=pk).update(reward=latest[episode], updated_at=timezone.now())
    if changed and policy.mode == Mode.BEST_WORST:
        _best_worst_prune(training_session_id, policy.keep)
    return changed


def _discard(pk: int, path: str, now) -> bool:
    """Discard one kept episode and delete its file; False when someone else already did."""
    if not RecordedEpisode.objects.filter(pk=pk, discarded_at__isnull=True).update(discarded_at=now, updated_at=now):
        return False
    recordings.remove(path)
    return True


def _best_worst_prune(training_session_id: str, keep: int) -> int:
    """Keep the ``keep`` best and ``keep`` worst rewarded episodes; episodes without a reward yet stay."""
    ranked = list(
        RecordedEpisode.objects.filter(
            training_session_id=training_session_id, discarded_at__isnull=True, reward__isnull=False
        )
        .order_by("reward", "episode")
        .values_list("pk", "path")
    )
    if len(ranked) <= 2 * keep:
        return 0
    now = timezone.now()
    return sum(_discard(pk, path, now) for pk, path in ranked[keep : len(ranked) - keep])


def _budget_enforce(training_session_id: str, max_bytes: int) -> int:
    """Discard the oldest kept episodes until the session's recordings fit in ``max_bytes``."""
    kept = RecordedEpisode.objects.filter(training_session_id=training_session_id, discarded_at__isnull=True)
    if (kept.aggregate(total=Sum("bytes"))["total"] or 0) <= max_bytes:
        return 0
    # The total and the order from one read: a sweep running at the same time that read
    # earlier only tries the same oldest episodes (and loses those races), never newer ones.
    rows = list(kept.order_by("created_at", "episode").values_list("pk", "path", "bytes"))
    total = sum(size for _pk, _path, size in rows)
    now = timezone.now()
    discarded = 0
    for pk, path, size in rows:
        if total <= max_bytes:
            break
        discarded += _discard(pk, path, now)
        total -= size
    return discarded


def recording_episode_discard(*, recorded_episode: RecordedEpisode, actor) -> bool:
    """Delete one recorded episode (the session's owner or staff); False when it was already gone.

    Raises ``PermissionDenied`` for anyone else.
    """
    from rooms.access import can_manage_training_session

    if not can_manage_training_session(actor, recorded_episode.training_session):
        raise PermissionDenied("Only the training session's owner can delete its recordings.")
    return _discard(recorded_episode.pk, recorded_episode.path, timezone.now())


@transaction.atomic
def recording_policy_set(*, training_session: TrainingSession, actor, **changes) -> RecordingPolicy:
    """Change what a session records and keeps (``mode``, ``every_n``, ``keep``, ``max_bytes``, ``max_age_hours``).

    Applies at once: a smaller budget or K prunes now. Raises ``PermissionDenied`` unless the
    actor manages the session, ``ValidationError`` naming the field.
    """
    from rooms.access import can_manage_training_session

    if not can_manage_training_session(actor, training_session):
        raise PermissionDenied("Only the training session's owner can change its recording.")
    policy = RecordingPolicy.objects.select_for_update().filter(pk=training_session.pk).first()
    if policy is None:
        defaults = policy_default()
        policy = RecordingPolicy(
            training_session=training_session,
            mode=defaults.mode,
            every_n=defaults.every_n,
            keep=defaults.keep,
            max_bytes=defaults.max_bytes,
            max_age_hours=defaults.max_age_hours,
        )
    for name, value in changes.items():
        setattr(policy, name, value)
    policy.full_clean()
    policy.save()
    session_id = training_session.pk
    # Now for this process's next batch, and again at commit: another process may have cached
    # the old settings in between.
    cache.delete(policy_cache_key(session_id))
    transaction.on_commit(lambda: cache.delete(policy_cache_key(session_id)))
    _budget_enforce(session_id, policy.max_bytes)
    if policy.mode == Mode.BEST_WORST:
        _best_worst_prune(session_id, policy.keep)
    return policy


# --- Retention: the sweep and `manage.py prune_recordings` -----------------------------------


def recordings_prune(*, now=None) -> dict:
    """Apply every session's retention once: age, byte budget, best/worst, then orphan files.

    Safe to run in several processes at once; returns what this run removed.
    """
    now = now or timezone.now()
    result = {"expired": 0, "over_budget": 0, "not_best_or_worst": 0, "orphan_files": 0}
    session_ids = list(RecordedEpisode.objects.order_by().values_list("training_session_id", flat=True).distinct())
    rows = {row.pk: row for row in RecordingPolicy.objects.filter(pk__in=session_ids)}
    for session_id in session_ids:
        policy = policy_of(rows.get(session_id))
        result["expired"] += _expire(session_id, now - timedelta(hours=policy.max_age_hours), now)
        result["over_budget"] += _budget_enforce(session_id, policy.max_bytes)
        _rewards_backfill(session_id)
        if policy.mode == Mode.BEST_WORST:
            result["not_best_or_worst"] += _best_worst_prune(session_id, policy.keep)
    result["orphan_files"] = _orphans_remove()
    return result


def _expire(training_session_id: str, cutoff, now) -> int:
    """Delete episodes last written before ``cutoff``; return how many kept ones this run expired.

    A kept episode is claimed with a conditional update first (a budget pass elsewhere may
    have just discarded it, and counted it), then its row goes with the old discarded ones.
    """
    expired = 0
    old = RecordedEpisode.objects.filter(training_session_id=training_session_id, updated_at__lt=cutoff)
    for pk, path in old.filter(discarded_at__isnull=True).values_list("pk", "path"):
        if RecordedEpisode.objects.filter(pk=pk, discarded_at__isnull=True).update(discarded_at=now):
            recordings.remove(path)
            expired += 1
    old.filter(discarded_at__isnull=False).delete()
    return expired


def _rewards_backfill(training_session_id: str) -> None:
    """Rewards whose metric point was stored while the episode's row was being created."""
    missing = dict(
        RecordedEpisode.objects.filter(
            training_session_id=training_session_id, discarded_at__isnull=True, reward__isnull=True
        )
        .order_by("-episode")
        .values_list("episode", "pk")[:REWARD_BACKFILL_LIMIT]
    )
    if not missing:
        return
    found = dict(
        MetricPoint.objects.filter(
            training_session_id=training_session_id, episode__in=list(missing), current_reward__isnull=False
        )
        .order_by("id")
        .values_list("episode", "current_reward")
    )
    for episode, reward in found.items():
        RecordedEpisode.objects.filter(pk=missing[episode], reward__isnull=True).update(reward=reward)


def _orphans_remove() -> int:
    """Delete files no kept episode points to (and empty session folders), once they are quiet."""
    root = recordings.recordings_root()
    if not root.is_dir():
        return 0
    quiet_before = time.time() - ORPHAN_GRACE_SECONDS
    removed = 0
    for folder in os.scandir(root):
        if not folder.is_dir(follow_symlinks=False):
            continue
        kept = set(
            RecordedEpisode.objects.filter(training_session_id=folder.name, discarded_at__isnull=True).values_list(
                "path", flat=True
            )
        )
        empty = True
        for item in os.scandir(folder.path):
            path = f"{folder.name}/{item.name}"
            if path in kept:
                empty = False
                continue
            try:
                if item.stat(follow_symlinks=False).st_mtime >= quiet_before:
                    empty = False
                    continue
            except FileNotFoundError:
                continue
            removed += recordings.remove(path)
        if empty:
            try:
                os.rmdir(folder.path)
            except OSError:
                pass  # a writer just created a file there
    return removed
