from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from rooms import access, selectors
from rooms.models import AccessLevel, Ban, Invitation, JoinRequest, Room, Spectator, SpectatorMode

# --- Input -------------------------------------------------------------------------------------


class UsernameListField(serializers.ListField):
    child = serializers.CharField(max_length=150)

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("max_length", 1000)
        super().__init__(**kwargs)


class AccessControlInputSerializer(serializers.Serializer):
    access_level = serializers.ChoiceField(choices=AccessLevel.choices, default=AccessLevel.PUBLIC)
    password = serializers.CharField(
        required=False, allow_null=True, allow_blank=False, min_length=4, max_length=128, trim_whitespace=False
    )
    max_spectators = serializers.IntegerField(min_value=1, max_value=100_000, default=10)
    allowed_users = UsernameListField()
    blocked_users = UsernameListField()
    require_approval = serializers.BooleanField(default=False)
    auto_approve_timeout = serializers.IntegerField(min_value=0, max_value=7 * 24 * 3600, default=0)


class RoomCreateInputSerializer(serializers.Serializer):
    training_session_id = serializers.CharField(max_length=64)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    access_control = AccessControlInputSerializer(required=False)
    room_duration_hours = serializers.FloatField(min_value=0.001, default=24)
    custom_room_code = serializers.CharField(max_length=16, required=False, allow_null=True, allow_blank=True)
    spectator_mode = serializers.ChoiceField(choices=SpectatorMode.choices, default=SpectatorMode.LIVE_TRAINING)
    enable_metrics_overlay = serializers.BooleanField(default=True)
    enable_performance_graphs = serializers.BooleanField(default=True)
    enable_decision_visualization = serializers.BooleanField(default=True)
    creator_id = serializers.CharField(max_length=150, required=False, allow_null=True)

    def validate_room_duration_hours(self, value):
        if value > settings.SPECTATOR_MAX_ROOM_HOURS:
            raise serializers.ValidationError(f"At most {settings.SPECTATOR_MAX_ROOM_HOURS} hours.")
        return value


class AccessUpdateInputSerializer(serializers.Serializer):
    access_level = serializers.ChoiceField(choices=AccessLevel.choices, required=False)
    password = serializers.CharField(required=False, min_length=4, max_length=128, trim_whitespace=False)
    max_spectators = serializers.IntegerField(min_value=1, max_value=100_000, required=False)
    require_approval = serializers.BooleanField(required=False)
    auto_approve_timeout = serializers.IntegerField(min_value=0, max_value=7 * 24 * 3600, required=False)
    allowed_users = serializers.ListField(child=serializers.CharField(max_length=150), required=False, max_length=1000)
    room_duration_hours = serializers.FloatField(min_value=0.001, required=False)
    listed = serializers.BooleanField(required=False, help_text="Public and password rooms: shown on the lobby.")
    approval_ttl = serializers.IntegerField(
        min_value=0, max_value=30 * 24 * 3600, required=False, help_text="Seconds an approval lasts; 0 = forever."
    )
    waiting_message = serializers.CharField(max_length=500, required=False, allow_blank=True)

    def validate(self, attrs):
        if not attrs:
            raise serializers.ValidationError({"non_field_errors": ["Send at least one field to change."]})
        return attrs


class JoinInputSerializer(serializers.Serializer):
    display_name = serializers.CharField(max_length=64, required=False, allow_blank=True)
    password = serializers.CharField(max_length=128, required=False, allow_blank=True, trim_whitespace=False)
    message = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    visitor_token = serializers.CharField(max_length=128, required=False, allow_blank=True)
    user_id = serializers.CharField(max_length=150, required=False, allow_null=True)
    invite_token = serializers.CharField(max_length=512, required=False, allow_blank=True)


class LeaveInputSerializer(serializers.Serializer):
    visitor_token = serializers.CharField(max_length=128, required=False, allow_blank=True)


class ActorInputSerializer(serializers.Serializer):
    """Optional ``actor_id``: who acts; naming someone else needs staff."""

    actor_id = serializers.CharField(max_length=150, required=False, allow_null=True)


class InvitationCreateInputSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)


class BanCreateInputSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150, required=False)
    spectator_id = serializers.IntegerField(min_value=1, required=False)
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    scope = serializers.ChoiceField(choices=Ban.Scope.choices, default=Ban.Scope.ROOM)

    def validate(self, attrs):
        if bool(attrs.get("username")) == bool(attrs.get("spectator_id")):
            raise serializers.ValidationError({"username": ["Give exactly one of username or spectator_id."]})
        return attrs


class JoinRequestListQuerySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=[*JoinRequest.Status.values, "all"], default=JoinRequest.Status.PENDING)


# --- Output ------------------------------------------------------------------------------------


class SpectatorSerializer(serializers.ModelSerializer):
    spectator_id = serializers.IntegerField(source="pk")
    username = serializers.SerializerMethodField()
    anonymous = serializers.SerializerMethodField()

    class Meta:
        model = Spectator
        fields = ["spectator_id", "display_name", "username", "anonymous", "joined_at", "last_seen_at"]

    def get_username(self, obj) -> str | None:
        return obj.user.get_username() if obj.user_id else None

    def get_anonymous(self, obj) -> bool:
        return obj.user_id is None


class JoinRequestSerializer(serializers.ModelSerializer):
    request_id = serializers.IntegerField(source="pk")
    username = serializers.SerializerMethodField()
    decided_by = serializers.SerializerMethodField()

    class Meta:
        model = JoinRequest
        fields = [
            "request_id",
            "display_name",
            "username",
            "message",
            "status",
            "created_at",
            "decided_at",
            "decided_by",
            "auto_approved",
        ]

    def get_username(self, obj) -> str | None:
        return obj.user.get_username() if obj.user_id else None

    def get_decided_by(self, obj) -> str | None:
        return obj.decided_by.get_username() if obj.decided_by_id else None


class InvitationSerializer(serializers.ModelSerializer):
    invitation_id = serializers.IntegerField(source="pk")
    username = serializers.CharField(source="user.username")
    invited_by = serializers.SerializerMethodField()

    class Meta:
        model = Invitation
        fields = ["invitation_id", "username", "invited_by", "created_at", "revoked_at"]

    def get_invited_by(self, obj) -> str | None:
        return obj.invited_by.get_username() if obj.invited_by_id else None


class BanSerializer(serializers.ModelSerializer):
    ban_id = serializers.IntegerField(source="pk")
    username = serializers.SerializerMethodField()
    banned_by = serializers.SerializerMethodField()

    class Meta:
        model = Ban
        fields = ["ban_id", "username", "display_name", "reason", "scope", "banned_by", "created_at", "lifted_at"]

    def get_username(self, obj) -> str | None:
        return obj.user.get_username() if obj.user_id else None

    def get_banned_by(self, obj) -> str | None:
        return obj.banned_by.get_username() if obj.banned_by_id else None


class AccessControlSerializer(serializers.Serializer):
    access_level = serializers.CharField()
    password_protected = serializers.BooleanField()
    max_spectators = serializers.IntegerField()
    require_approval = serializers.BooleanField()
    auto_approve_timeout = serializers.IntegerField()
    approval_ttl = serializers.IntegerField()
    locked = serializers.BooleanField()
    listed = serializers.BooleanField(help_text="Shown on the lobby.")
    allowed_users = serializers.ListField(child=serializers.CharField(), required=False)
    blocked_users = serializers.ListField(child=serializers.CharField(), required=False)


class TrainingSessionSummarySerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    algorithm = serializers.CharField()
    total_episodes = serializers.IntegerField(allow_null=True)
    status = serializers.CharField()


class RoomProgressSerializer(serializers.Serializer):
    episode = serializers.IntegerField(allow_null=True)
    total_episodes = serializers.IntegerField(allow_null=True)
    algorithm = serializers.CharField(allow_blank=True)


class RoomSerializer(serializers.Serializer):
    """A room as the caller may see it; managers also see who is allowed, banned and waiting."""

    room_id = serializers.UUIDField(source="pk")
    room_code = serializers.CharField(source="code")
    name = serializers.CharField()
    training_session_id = serializers.CharField()
    training_session = TrainingSessionSummarySerializer()
    creator_id = serializers.CharField(source="creator.username")
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    room_status = serializers.SerializerMethodField()
    spectator_mode = serializers.CharField()
    enable_metrics_overlay = serializers.BooleanField()
    enable_performance_graphs = serializers.BooleanField()
    enable_decision_visualization = serializers.BooleanField()
    access_control = serializers.SerializerMethodField()
    current_spectators = serializers.SerializerMethodField()
    can_manage = serializers.SerializerMethodField()
    pending_requests = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField(
        help_text="What the training is at: the newest metric point's episode, of how many, and the algorithm."
    )

    def _user(self):
        request = self.context.get("request")
        return request.user if request else None

    def _manages(self, room) -> bool:
        cache = self.context.setdefault("_manages", {})
        if room.pk not in cache:
            cache[room.pk] = access.can_manage_room(self._user(), room)
        return cache[room.pk]

    def get_room_status(self, room) -> str:
        if room.status in Room.LIVE_STATUSES and room.is_expired():
            return Room.Status.EXPIRED
        return room.status

    def get_access_control(self, room) -> dict:
        data = {
            "access_level": room.access_level,
            "password_protected": room.access_level == AccessLevel.PASSWORD,
            "max_spectators": room.max_spectators,
            "require_approval": room.require_approval,
            "auto_approve_timeout": room.auto_approve_timeout,
            "approval_ttl": room.approval_ttl,
            "locked": room.locked,
            "listed": access.is_listed(room),
        }
        if self._manages(room):
            data["allowed_users"] = sorted(room.allowed_users.values_list("username", flat=True))
            data["blocked_users"] = sorted(
                room.bans.filter(lifted_at__isnull=True, user__isnull=False).values_list("user__username", flat=True)
            )
        return data

    def get_current_spectators(self, room) -> int:
        present = getattr(room, "present_count", None)
        return present if present is not None else room.spectators.filter(left_at__isnull=True).count()

    def get_can_manage(self, room) -> bool:
        return self._manages(room)

    def get_pending_requests(self, room) -> int | None:
        if not self._manages(room):
            return None
        pending = getattr(room, "pending_count", None)
        return pending if pending is not None else room.join_requests.filter(status=JoinRequest.Status.PENDING).count()

    @extend_schema_field(RoomProgressSerializer)
    def get_progress(self, room) -> dict:
        return selectors.room_progress(room)


class RoomCreatedSerializer(RoomSerializer):
    room_password = serializers.CharField(allow_null=True, help_text="Shown once; only its hash is stored.")


class RoomPasswordSerializer(serializers.Serializer):
    room_code = serializers.CharField()
    room_password = serializers.CharField(help_text="Shown once; only its hash is stored.")


class JoinResponseSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["approved", "pending_approval"])
    session_id = serializers.UUIDField(help_text="The room's id.")
    room_id = serializers.UUIDField()
    room_code = serializers.CharField()
    display_name = serializers.CharField()
    spectator_id = serializers.IntegerField(required=False)
    ticket = serializers.CharField(required=False, help_text="Signed, short-lived; opens the room WebSocket.")
    ticket_expires_in = serializers.IntegerField(required=False)
    websocket_url = serializers.CharField(required=False)
    request_id = serializers.IntegerField(required=False)
    place = serializers.IntegerField(required=False, help_text="Pending: where the request stands in line, from 1.")
    waiting_message = serializers.CharField(required=False, help_text="Pending: what the room's owner says.")
    visitor_token = serializers.CharField(
        required=False, help_text="Anonymous visitors: send it back with later joins and leaves."
    )


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField()
    detail = serializers.CharField()
    fields = serializers.DictField(child=serializers.ListField(child=serializers.CharField()), required=False)


# --- Moderation (rooms.moderation, rooms.invite_links, rooms.audit) -------------------------------


class ModeratorCreateInputSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)


class ModeratorSerializer(serializers.Serializer):
    username = serializers.CharField(source="user.username")
    added_by = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()

    def get_added_by(self, obj) -> str | None:
        return obj.added_by.get_username() if obj.added_by_id else None


class TimeoutCreateInputSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150, required=False)
    spectator_id = serializers.IntegerField(min_value=1, required=False)
    duration_seconds = serializers.IntegerField(min_value=1, max_value=30 * 24 * 3600)
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")

    def validate(self, attrs):
        if bool(attrs.get("username")) == bool(attrs.get("spectator_id")):
            raise serializers.ValidationError({"username": ["Give exactly one of username or spectator_id."]})
        return attrs


class TimeoutSerializer(BanSerializer):
    class Meta(BanSerializer.Meta):
        fields = [*BanSerializer.Meta.fields, "expires_at"]


class InviteLinkCreateInputSerializer(serializers.Serializer):
    username = serializers.CharField(
        max_length=150, required=False, allow_null=True, help_text="Only this user may use the link."
    )
    grants_password = serializers.BooleanField(default=False, help_text="Password rooms: the link skips the password.")
    expires_in_hours = serializers.FloatField(min_value=0.001, max_value=24 * 30, default=24)
    label = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")


class InviteLinkSerializer(serializers.Serializer):
    link_id = serializers.IntegerField(source="pk")
    username = serializers.SerializerMethodField()
    grants_password = serializers.BooleanField()
    label = serializers.CharField()
    created_by = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    revoked_at = serializers.DateTimeField(allow_null=True)
    uses = serializers.IntegerField()

    def get_username(self, obj) -> str | None:
        return obj.user.get_username() if obj.user_id else None

    def get_created_by(self, obj) -> str | None:
        return obj.created_by.get_username() if obj.created_by_id else None


class InviteLinkCreatedSerializer(InviteLinkSerializer):
    token = serializers.CharField(help_text="Shown once; only a hash of its secret is stored.")
    url = serializers.CharField(help_text="Opens the room and joins in one click.")


class AdmitAllSerializer(serializers.Serializer):
    admitted = serializers.IntegerField()


class AuditEntrySerializer(serializers.Serializer):
    entry_id = serializers.IntegerField(source="pk")
    created_at = serializers.DateTimeField()
    room_code = serializers.CharField()
    action = serializers.CharField()
    actor = serializers.CharField(source="actor_name")
    target = serializers.CharField(source="target_name")
    ip = serializers.CharField(allow_null=True)
    details = serializers.DictField()
