"""Reads of training sessions and their metric history."""

from django.conf import settings
from django.db.models import QuerySet

from metrics.models import MetricPoint, TrainingSession

POINT_FIELDS = ["id", "stream", "seq", *MetricPoint.METRICS_DATA_FIELDS, "extra", "decision"]


def training_session_list_for_user(user) -> QuerySet:
    return TrainingSession.objects.select_related("owner").filter(owner=user).order_by("-created_at")


def metric_points_after(training_session_id: str, *, after_id: int = 0, limit: int = 1000) -> list[dict]:
    """Points stored after ``after_id``, oldest first, as plain dicts (for backfill and history)."""
    return list(
        MetricPoint.objects.filter(training_session_id=training_session_id, id__gt=after_id)
        .order_by("id")
        .values(*POINT_FIELDS)[:limit]
    )


def metric_points_recent(training_session_id: str, *, limit: int | None = None) -> list[dict]:
    """The latest ``limit`` points, oldest first (a late joiner's snapshot)."""
    limit = settings.SPECTATOR_SNAPSHOT_POINTS if limit is None else limit
    rows = list(
        MetricPoint.objects.filter(training_session_id=training_session_id)
        .order_by("-id")
        .values(*POINT_FIELDS)[:limit]
    )
    rows.reverse()
    return rows
