"""Reads of training sessions."""

from django.db.models import QuerySet

from metrics.models import TrainingSession


def training_session_list_for_user(user) -> QuerySet:
    return TrainingSession.objects.select_related("owner").filter(owner=user).order_by("-created_at")
