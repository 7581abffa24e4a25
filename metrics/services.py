import secrets
from dataclasses import dataclass

import orjson
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.text import slugify

from metrics.events import (
    control_item,
    graph_config_message,
    metric_items,
    publish_stream_after_commit,
    training_status,
)
from metrics.models import MetricPoint, TrainingSession
from metrics.trends import TrendConfig, TrendState, trend_update
from spectator_site.observability import observe_ingest


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
    from rooms.access import can_manage_training_session
    from rooms.models import Room
    from rooms.services import room_close

    if not can_manage_training_session(actor, training_session):
        raise PermissionDenied("Only the training session's owner can close it.")
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


@observe_ingest
def metric_points_append(*, training_session: TrainingSession, points: list[dict]) -> AppendResult:
    """Persist validated metric points in bulk, then publish the new ones once, after commit.

    Points whose ``(stream, seq)`` is already stored (a retried batch) are skipped, so a
    retry never stores a point twice. New custom scalars extend the session's graphs. The
    new points feed the session's trend analysis; a new best reward, or a plateau starting
    or ending, becomes a ``training_status`` note after the points.
    Raises ``ValidationError`` (field ``training_session_id``) once the session is no longer
    open: an ingest socket outlives the check made when it connected.
    """
    if not points:
        return AppendResult(accepted=0, duplicates=0, last_seq=None)
    with transaction.atomic():
        open_statuses = (TrainingSession.Status.RUNNING, TrainingSession.Status.PAUSED)
        # Locked: concurrent batches of one session update its trend state one after the other.
        current = (
            TrainingSession.objects.select_for_update().filter(pk=training_session.pk, status__in=open_statuses).first()
        )
        if current is None:
            raise ValidationError({"training_session_id": "This training session is closed."})
        fresh = _points_not_stored(training_session, points)
        _metric_points_insert(training_session.pk, fresh)
        new_keys = _extra_keys_extend(training_session, fresh)
        items = metric_items(fresh)
        if new_keys is not None:
            items.insert(0, control_item(graph_config_message(new_keys)))
        items.extend(control_item(note) for note in _trend_notes(current, fresh))
        publish_stream_after_commit(training_session.pk, items)
    return AppendResult(
        accepted=len(fresh), duplicates=len(points) - len(fresh), last_seq=max(point["seq"] for point in points)
    )


_POINT_FIELDS = [
    f
    for f in MetricPoint._meta.concrete_fields
    if not f.primary_key and f.name not in ("training_session", "received_at")
]
_JSON_FIELDS = {"extra", "decision"}


def _metric_points_insert(training_session_id: str, points: list[dict]) -> None:
    """Insert points fast, never storing a ``(stream, seq)`` pair twice.

    Django's ``bulk_create`` prepares every value of every field in Python, which capped ingest
    near 8,000 points a second. PostgreSQL gets a ``COPY`` (the caller has already filtered out
    stored pairs; if a concurrent retry wins the race the COPY fails on the unique constraint
    and an ``INSERT … ON CONFLICT DO NOTHING`` of column arrays runs instead); SQLite gets
    ``INSERT OR IGNORE`` through ``executemany``.
    """
    if not points:
        return
    now = timezone.now()
    table = connection.ops.quote_name(MetricPoint._meta.db_table)
    names = ["training_session_id", *(f.column for f in _POINT_FIELDS), "received_at"]
    columns = ", ".join(connection.ops.quote_name(name) for name in names)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            try:
                with transaction.atomic():
                    with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                        copy.write(_copy_text(training_session_id, points, now))
                return
            except IntegrityError:
                pass
            rows = _rows(training_session_id, points)
            casts = ["varchar[]", *(f"{_array_type(f)}[]" for f in _POINT_FIELDS)]
            arrays = ", ".join(f"%s::{cast}" for cast in casts)
            cursor.execute(
                f"INSERT INTO {table} ({columns}) SELECT u.*, %s FROM unnest({arrays}) AS u ON CONFLICT DO NOTHING",
                [now, *(list(column) for column in zip(*rows, strict=True))],
            )
        else:
            received_at = MetricPoint._meta.get_field("received_at").get_db_prep_value(now, connection)
            placeholders = ", ".join(["%s"] * len(names))
            cursor.executemany(
                f"INSERT OR IGNORE INTO {table} ({columns}) VALUES ({placeholders})",
                [[*row, received_at] for row in _rows(training_session_id, points)],
            )


def _rows(training_session_id: str, points: list[dict]) -> list[list]:
    return [[training_session_id, *(_column_value(f, point[f.name]) for f in _POINT_FIELDS)] for point in points]


def _column_value(field, value):
    if field.name in _JSON_FIELDS:
        return None if value is None else orjson.dumps(value).decode()
    return value


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
# How each column is written in COPY's text format, in _POINT_FIELDS order.
_COPY_JSON, _COPY_TEXT, _COPY_NUMBER = 0, 1, 2
_COPY_COLUMNS = tuple(
    (
        f.name,
        _COPY_JSON if f.name in _JSON_FIELDS else _COPY_TEXT if f.get_internal_type() == "CharField" else _COPY_NUMBER,
    )
    for f in _POINT_FIELDS
)


def _copy_text(training_session_id: str, points: list[dict], now) -> bytes:
    """Rows in COPY's text format: tab-separated, \\N for NULL, backslash escapes in strings.

    One pass per point with the column kinds worked out once: this runs for every point.
    Floats use ``repr`` (shortest round-trip form), which PostgreSQL parses back exactly.
    """
    head = training_session_id.translate(_COPY_ESCAPES)
    tail = now.isoformat()
    dumps = orjson.dumps
    lines = []
    for point in points:
        cells = [head]
        for name, kind in _COPY_COLUMNS:
            value = point[name]
            if value is None:
                cells.append("\\N")
            elif kind == _COPY_NUMBER:
                cells.append(repr(value))
            elif kind == _COPY_TEXT:
                cells.append(value.translate(_COPY_ESCAPES))
            else:
                cells.append(dumps(value).decode().translate(_COPY_ESCAPES))
        cells.append(tail)
        lines.append("\t".join(cells))
    lines.append("")
    return "\n".join(lines).encode()


def _array_type(field) -> str:
    if field.get_internal_type() == "JSONField":
        return "jsonb"
    if field.get_internal_type() == "CharField":
        return "varchar"
    return field.db_type(connection)


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


# TrendState fields kept in their own TrainingSession columns; the rest live in ``trend``.
_TREND_COLUMNS = {
    "best_reward": "best_reward",
    "best_reward_episode": "best_reward_episode",
    "plateau_since": "plateau_since_episode",
}


def _trend_notes(training_session: TrainingSession, points: list[dict]) -> list[dict]:
    """Feed the points' rewards to the session's trend state, save it, and return its notes.

    ``training_session`` is the row locked for this batch.
    """
    rewards = [(p["episode"], p["timestamp"], p["current_reward"]) for p in points if p["current_reward"] is not None]
    if not rewards:
        return []
    stored = {**training_session.trend}
    stored.update({name: getattr(training_session, column) for name, column in _TREND_COLUMNS.items()})
    state, events = trend_update(TrendState.from_dict(stored), rewards, TrendConfig.from_settings())
    values = state.to_dict()
    update = {column: values.pop(name) for name, column in _TREND_COLUMNS.items()}
    update["trend"] = values
    TrainingSession.objects.filter(pk=training_session.pk).update(**update)
    for column, value in update.items():
        setattr(training_session, column, value)
    return [training_status(training_session, message=event.message(), trend=event.to_dict()) for event in events]


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
