from rest_framework import serializers

from metrics.models import TrainingSession, training_session_id_validator


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
