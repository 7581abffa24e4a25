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
