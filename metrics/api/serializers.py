import math
from datetime import UTC

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from metrics.exports import export_fields_allowed
from metrics.models import TrainingSession, training_session_id_validator
from metrics.selectors import (
    COMPARISON_MAX_SESSIONS,
    COMPARISON_MIN_SESSIONS,
    PointWindow,
    series_name_resolve,
)


class TrainingSessionCreateInputSerializer(serializers.Serializer):
    id = serializers.CharField(max_length=64, required=False, validators=[training_session_id_validator])
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    algorithm = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    total_episodes = serializers.IntegerField(min_value=0, max_value=2**31 - 1, required=False, allow_null=True)


class TrainingSessionSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username")

    class Meta:
        model = TrainingSession
        fields = ["id", "name", "algorithm", "total_episodes", "status", "owner", "created_at", "updated_at"]


class IngestResultSerializer(serializers.Serializer):
    accepted = serializers.IntegerField(help_text="Metric points stored by this request.")
    duplicates = serializers.IntegerField(help_text="Points already stored earlier (a retried batch).")
    last_seq = serializers.IntegerField(allow_null=True)
    decisions = serializers.IntegerField(help_text="Decisions broadcast.")


class IngestInputSerializer(serializers.Serializer):
    """Documentation only: ingest is validated by ``metrics.ingest`` for speed."""

    points = serializers.ListField(child=serializers.DictField(), required=False, max_length=1000)
    decisions = serializers.ListField(child=serializers.DictField(), required=False, max_length=1000)
    stream = serializers.CharField(required=False, help_text="Default stream for points that name none.")


class StatusInputSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["running", "paused", "completed"])
    message = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class MetricPointSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    data = serializers.DictField()


# --- History and export query parameters ------------------------------------------------------


@extend_schema_field({"oneOf": [{"type": "number"}, {"type": "string", "format": "date-time"}]})
class TimestampField(serializers.Field):
    """Seconds since the epoch, or an ISO 8601 date-time (UTC unless it names a zone)."""

    default_error_messages = {"invalid": "Give seconds since the epoch or an ISO 8601 date-time."}

    def to_internal_value(self, data):
        text = str(data).strip()
        try:
            value = float(text)
        except ValueError:
            try:
                moment = parse_datetime(text)
            except ValueError:
                moment = None
            if moment is None:
                self.fail("invalid")
            if timezone.is_naive(moment):
                moment = moment.replace(tzinfo=UTC)
            return moment.timestamp()
        if not math.isfinite(value):
            self.fail("invalid")
        return value

    def to_representation(self, value):
        return value


class PointWindowQuerySerializer(serializers.Serializer):
    episode_from = serializers.IntegerField(required=False, min_value=0, max_value=2**62)
    episode_to = serializers.IntegerField(required=False, min_value=0, max_value=2**62)
    time_from = TimestampField(required=False)
    time_to = TimestampField(required=False)
    visitor_token = serializers.CharField(required=False, allow_blank=True)

    def validate(self, attrs):
        for start, end in (("episode_from", "episode_to"), ("time_from", "time_to")):
            if attrs.get(start) is not None and attrs.get(end) is not None and attrs[end] < attrs[start]:
                raise serializers.ValidationError({end: [f"Must not be before {start}."]})
        return attrs

    def window(self) -> PointWindow:
        data = self.validated_data
        return PointWindow(
            episode_from=data.get("episode_from"),
            episode_to=data.get("episode_to"),
            time_from=data.get("time_from"),
            time_to=data.get("time_to"),
        )


def _names(value: str) -> list[str]:
    """Comma-separated names, stripped, without repeats, in order."""
    return list(dict.fromkeys(name.strip() for name in value.split(",") if name.strip()))


class HistoryQuerySerializer(PointWindowQuerySerializer):
    """Needs ``context["training_session"]``: custom scalar names are the session's own."""

    MAX_METRICS = 16

    metrics = serializers.CharField(
        help_text="Comma-separated: seed fields (current_reward, loss_value, ...) and custom scalars "
        "(their name, or extra.<name>)."
    )
    x = serializers.ChoiceField(choices=["episode", "time"], default="episode")
    points = serializers.IntegerField(min_value=2, max_value=10_000, default=1000)
    smooth = serializers.FloatField(required=False)

    def validate_metrics(self, value):
        names = _names(value)
        if not names:
            raise serializers.ValidationError("Name at least one metric.")
        if len(names) > self.MAX_METRICS:
            raise serializers.ValidationError(f"At most {self.MAX_METRICS} metrics.")
        session = self.context["training_session"]
        unknown = [name for name in names if series_name_resolve(name, session.extra_keys) is None]
        if unknown:
            raise serializers.ValidationError(f"Unknown metric: {', '.join(unknown)}.")
        return names

    def validate_smooth(self, value):
        if not (math.isfinite(value) and 0 < value <= 1):
            raise serializers.ValidationError("The EMA weight of a new point: above 0, at most 1.")
        return value


class ExportQuerySerializer(PointWindowQuerySerializer):
    """Needs ``context["training_session"]``; ``fields`` (a name DRF serializers keep) is added below."""

    def get_fields(self):
        fields = super().get_fields()
        fields["fields"] = serializers.CharField(
            required=False,
            help_text="Comma-separated field names, in the order wanted: seed fields, stream, seq, extra, "
            "extra.<name>, decision fields. Default: all.",
        )
        return fields

    def validate_fields(self, value):
        names = _names(value)
        if not names:
            raise serializers.ValidationError("Name at least one field.")
        allowed = set(export_fields_allowed(self.context["training_session"]))
        unknown = [name for name in names if name not in allowed]
        if unknown:
            raise serializers.ValidationError(f"Unknown field: {', '.join(unknown)}.")
        return names


class MetricSeriesSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="Points in range with a value for this metric.")
    data = serializers.ListField(child=serializers.ListField(), help_text="[[x, y], ...], x ascending.")
    smoothed = serializers.ListField(child=serializers.ListField(), required=False)
    new_best = serializers.ListField(child=serializers.ListField(), required=False)


class MetricHistorySerializer(serializers.Serializer):
    """Documentation of the history response."""

    training_session_id = serializers.CharField()
    x = serializers.ChoiceField(choices=["episode", "time"])
    count = serializers.IntegerField(help_text="Points in range.")
    points = serializers.IntegerField(help_text="At most this many points a series.")
    downsampled = serializers.BooleanField()
    x_range = serializers.ListField(child=serializers.FloatField(), allow_null=True)
    smooth = serializers.FloatField(allow_null=True)
    series = serializers.DictField(child=MetricSeriesSerializer())
    trend = serializers.DictField()


# --- Run summaries and comparisons -------------------------------------------------------------


class SummaryQuerySerializer(serializers.Serializer):
    last = serializers.IntegerField(
        min_value=1,
        max_value=1_000_000,
        default=100,
        help_text="The recent average covers the last this many episodes (default 100).",
    )
    visitor_token = serializers.CharField(required=False, allow_blank=True)


class ComparisonQuerySerializer(SummaryQuerySerializer):
    MIN_SESSIONS, MAX_SESSIONS = COMPARISON_MIN_SESSIONS, COMPARISON_MAX_SESSIONS

    sessions = serializers.CharField(
        help_text="2 to 4 training session ids, comma-separated (or the parameter repeated), in the order wanted."
    )

    def validate_sessions(self, value):
        ids = _names(value)
        if not self.MIN_SESSIONS <= len(ids) <= self.MAX_SESSIONS:
            raise serializers.ValidationError(
                f"Name {self.MIN_SESSIONS} to {self.MAX_SESSIONS} different training sessions (got {len(ids)})."
            )
        return ids


class RunSummarySerializer(serializers.Serializer):
    """Documentation and formatting of ``metrics.selectors.training_session_summary``."""

    training_session_id = serializers.CharField()
    name = serializers.CharField()
    algorithm = serializers.CharField()
    status = serializers.CharField(help_text="running, paused, completed or closed.")
    owner = serializers.CharField()
    created_at = serializers.DateTimeField()
    extra_keys = serializers.ListField(child=serializers.CharField(), help_text="Its custom scalars.")
    points = serializers.IntegerField(help_text="Metric points stored.")
    episodes = serializers.IntegerField(help_text="Distinct episode numbers with a point.")
    first_episode = serializers.IntegerField(allow_null=True)
    last_episode = serializers.IntegerField(allow_null=True)
    started_at = serializers.FloatField(allow_null=True, help_text="First point's timestamp (seconds since the epoch).")
    last_point_at = serializers.FloatField(allow_null=True, help_text="Last point's timestamp.")
    duration_seconds = serializers.FloatField(allow_null=True, help_text="From the first point to the last.")
    episodes_per_hour = serializers.FloatField(
        allow_null=True, help_text="Episode counter's advance per hour between the first and the last point."
    )
    best_reward = serializers.FloatField(allow_null=True, help_text="Highest current_reward.")
    best_reward_episode = serializers.IntegerField(allow_null=True, help_text="First episode that reached it.")
    average_reward = serializers.FloatField(allow_null=True, help_text="Mean current_reward over the run.")
    recent_episodes = serializers.IntegerField(help_text="The ``last`` asked for.")
    recent_average_reward = serializers.FloatField(
        allow_null=True, help_text="Mean current_reward over the last ``recent_episodes`` episodes."
    )
    win_rate = serializers.FloatField(allow_null=True, help_text="The latest win_rate reported.")
    win_rate_episode = serializers.IntegerField(allow_null=True, help_text="The episode it was reported at.")


class ComparisonSerializer(serializers.Serializer):
    last = serializers.IntegerField()
    sessions = RunSummarySerializer(many=True)
