import secrets
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.text import slugify

from metrics.events import (
    control_item,
    graph_config_message,
    metric_items,
    publish_stream_after_commit,
    training_status,
)
from metrics.models import MetricPoint, TrainingSession


def _generated_id(name: str) -> str:
    stem = slugify(name)[:40].strip("-_") or "session"
    return f"{stem}-{secrets.token_hex(4)}"


@transaction.atomic
def training_session_create(
    *, owner, id: str | None = None, name: str = "", algorithm: str = "", total_episodes: int | None = None
) -> tuple[TrainingSession, bool]:
    """Create a training session for ``owner``, or return the owner's existing one with that id.

    Returns ``(session, created)``. Raises ``ValidationError`` (field ``id``) when another
    user already owns the id, and for invalid fields.
    """
    if id:
        existing = TrainingSession.objects.select_for_update().filter(pk=id).first()
        if existing is not None:
            if existing.owner_id != owner.pk:
                raise ValidationError({"id": "This training session id is taken by another user."})
            return existing, False
    session = TrainingSession(
        id=id or _generated_id(name), owner=owner, name=name, algorithm=algorithm, total_episodes=total_episodes
    )
    session.full_clean()
    session.save(force_insert=True)
    return session, True


@transaction.atomic
def training_session_close(*, training_session: TrainingSession, actor) -> TrainingSession:
    """Mark a training session closed and close every live room that shows it."""
    from rooms.models import Room
    from rooms.services import room_close

    training_session.status = TrainingSession.Status.CLOSED
    training_session.save(update_fields=["status", "updated_at"])
    for room in Room.objects.filter(training_session=training_session, status__in=Room.LIVE_STATUSES):
        room_close(room=room, actor=actor)
    return training_session


@dataclass(frozen=True)
class AppendResult:
    accepted: int
    duplicates: int
    last_seq: int | None


def metric_points_append(*, training_session: TrainingSession, points: list[dict]) -> AppendResult:
    """Persist validated metric points in bulk, then publish the new ones once, after commit.

    Points whose ``(stream, seq)`` is already stored (a retried batch) are skipped, so a
    retry never stores a point twice. New custom scalars extend the session's graphs.
    """
    if not points:
        return AppendResult(accepted=0, duplicates=0, last_seq=None)
    with transaction.atomic():
        fresh = _points_not_stored(training_session, points)
        MetricPoint.objects.bulk_create(
            [MetricPoint(training_session_id=training_session.pk, **point) for point in fresh],
            batch_size=1000,
            ignore_conflicts=True,
        )
        new_keys = _extra_keys_extend(training_session, fresh)
        items = metric_items(fresh)
        if new_keys is not None:
            items.insert(0, control_item(graph_config_message(new_keys)))
        publish_stream_after_commit(training_session.pk, items)
    return AppendResult(
        accepted=len(fresh), duplicates=len(points) - len(fresh), last_seq=max(point["seq"] for point in points)
    )


def _points_not_stored(training_session: TrainingSession, points: list[dict]) -> list[dict]:
    """Drop points already stored and repeats inside the batch, keeping order."""
    by_stream: dict[str, list[int]] = {}
    for point in points:
        by_stream.setdefault(point["stream"], []).append(point["seq"])
    stored = set()
    for stream, seqs in by_stream.items():
        stored.update(
            (stream, seq)
            for seq in MetricPoint.objects.filter(
                training_session_id=training_session.pk, stream=stream, seq__gte=min(seqs), seq__lte=max(seqs)
            ).values_list("seq", flat=True)
        )
    fresh = []
    for point in points:
        key = (point["stream"], point["seq"])
        if key not in stored:
            stored.add(key)
            fresh.append(point)
    return fresh


def _extra_keys_extend(training_session: TrainingSession, points: list[dict]) -> list[str] | None:
    """Record custom scalar names not seen before; return the full list if it grew."""
    seen = set(training_session.extra_keys)
    new = [key for point in points for key in point["extra"] if key not in seen and not seen.add(key)]
    if not new:
        return None
    locked = TrainingSession.objects.select_for_update().get(pk=training_session.pk)
    keys = list(locked.extra_keys)
    keys.extend(key for key in new if key not in keys)
    locked.extra_keys = keys
    locked.save(update_fields=["extra_keys", "updated_at"])
    training_session.extra_keys = keys
    return keys


@transaction.atomic
def training_session_status_set(
    *, training_session: TrainingSession, status: str, message: str = ""
) -> TrainingSession:
    """Record the trainer's status (running, paused, completed) and tell every room."""
    if status not in (TrainingSession.Status.RUNNING, TrainingSession.Status.PAUSED, TrainingSession.Status.COMPLETED):
        raise ValidationError({"status": "Choose running, paused or completed."})
    if not training_session.is_open and status != TrainingSession.Status.COMPLETED:
        raise ValidationError({"status": "This training session is closed."})
    training_session.status = status
    training_session.save(update_fields=["status", "updated_at"])
    publish_stream_after_commit(
        training_session.pk, [control_item(training_status(training_session, message=message[:500]))]
    )
    return training_session
