from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from metrics.api.serializers import TrainingSessionSerializer
from metrics.models import RecordingPolicy
from metrics.recording_selectors import FRAME_ENCODINGS, ORDERINGS, policy_of, recording_usage


class RecordingSettingsSerializer(serializers.Serializer):
    mode = serializers.ChoiceField(
        choices=RecordingPolicy.Mode.choices,
        help_text="all: every episode; every_nth: episodes whose number is a multiple of every_n; "
        "best_worst: the `keep` best and `keep` worst by reward (each kept until its reward is known); off.",
    )
    every_n = serializers.IntegerField(min_value=1, max_value=1_000_000, help_text="every_nth: N.")
    keep = serializers.IntegerField(min_value=1, max_value=1000, help_text="best_worst: K.")
    max_bytes = serializers.IntegerField(
        min_value=0, max_value=2**50, help_text="Recordings kept per session; the oldest episodes go first."
    )
    max_age_hours = serializers.FloatField(
        min_value=0.01, max_value=24 * 365 * 10, help_text="Episodes not written for this long are deleted."
    )


class RecordingSettingsOutputSerializer(RecordingSettingsSerializer):
    episodes = serializers.IntegerField(help_text="Episodes kept now.")
    bytes = serializers.IntegerField(help_text="Their size on disk.")


def recording_settings(training_session) -> dict:
    """A session's recording settings (the server's defaults where it set none) and current usage."""
    policy = RecordingPolicy.objects.filter(pk=training_session.pk).first()
    return {**policy_of(policy).to_dict(), **recording_usage(training_session.pk)}


class TrainingSessionDetailSerializer(TrainingSessionSerializer):
    recording = serializers.SerializerMethodField()

    class Meta(TrainingSessionSerializer.Meta):
        fields = [*TrainingSessionSerializer.Meta.fields, "recording"]

    @extend_schema_field(RecordingSettingsOutputSerializer)
    def get_recording(self, session) -> dict:
        return recording_settings(session)


class RecordingSettingsInputSerializer(RecordingSettingsSerializer):
    """The same settings, each optional: only those given change."""

    def get_fields(self):
        fields = super().get_fields()
        for field in fields.values():
            field.required = False
        return fields


class TrainingSessionUpdateInputSerializer(serializers.Serializer):
    recording = RecordingSettingsInputSerializer(help_text="Only the settings given change.")

    def validate_recording(self, value):
        if not value:
            raise serializers.ValidationError("Name at least one setting to change.")
        return value


class RecordedEpisodeSerializer(serializers.Serializer):
    episode = serializers.IntegerField()
    decisions = serializers.IntegerField(help_text="Decisions recorded.")
    frames = serializers.IntegerField(help_text="Frames recorded.")
    steps = serializers.IntegerField(help_text="Steps spanned (first to last step).")
    first_step = serializers.IntegerField(allow_null=True)
    last_step = serializers.IntegerField(allow_null=True)
    bytes = serializers.IntegerField(help_text="Size on disk.")
    reward = serializers.FloatField(
        allow_null=True, help_text="The episode's current_reward, once its metric point came."
    )
    started_at = serializers.FloatField(
        allow_null=True, help_text="First record's timestamp (seconds since the epoch)."
    )
    ended_at = serializers.FloatField(allow_null=True, help_text="Last record's timestamp.")
    recorded_at = serializers.DateTimeField(source="created_at")
    updated_at = serializers.DateTimeField()


class RecordedEpisodeListQuerySerializer(serializers.Serializer):
    ordering = serializers.ChoiceField(choices=list(ORDERINGS), default="-episode")
    limit = serializers.IntegerField(required=False, min_value=1, max_value=500)
    offset = serializers.IntegerField(required=False, min_value=0)
    visitor_token = serializers.CharField(required=False, allow_blank=True)


class RecordedEpisodeExportQuerySerializer(serializers.Serializer):
    frames = serializers.ChoiceField(
        choices=FRAME_ENCODINGS,
        default="base64",
        help_text="base64: each frame's image inline; none: frame headers and sizes only (a small file).",
    )
    visitor_token = serializers.CharField(required=False, allow_blank=True)
