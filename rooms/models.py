import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from rooms.codes import ROOM_CODE_LENGTH, room_code_validator


class AccessLevel(models.TextChoices):
    PUBLIC = "public", "Public"
    PASSWORD = "password", "Password"
    INVITE_ONLY = "invite_only", "Invite only"
    PRIVATE = "private", "Private"


class SpectatorMode(models.TextChoices):
    LIVE_TRAINING = "live_training", "Live training"
    REPLAY = "replay", "Replay"
    COMPARISON = "comparison", "Comparison"


class RoomQuerySet(models.QuerySet):
    def live(self):
        """Rooms that are open and not past their expiry."""
        return self.filter(status__in=Room.LIVE_STATUSES, expires_at__gt=timezone.now())


class Room(models.Model):
    """A place to watch one training session, behind a short code and an access level."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused"
        CLOSED = "closed", "Closed"
        EXPIRED = "expired", "Expired"

    LIVE_STATUSES = (Status.ACTIVE, Status.PAUSED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    code = models.CharField(max_length=ROOM_CODE_LENGTH, validators=[room_code_validator])
    name = models.CharField(max_length=200, blank=True)
    training_session = models.ForeignKey("metrics.TrainingSession", on_delete=models.CASCADE, related_name="rooms")
    creator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="created_rooms")
    access_level = models.CharField(max_length=16, choices=AccessLevel.choices, default=AccessLevel.PUBLIC)
    password_hash = models.CharField(max_length=256, blank=True)
    max_spectators = models.PositiveIntegerField(
        default=10, validators=[MinValueValidator(1), MaxValueValidator(100_000)]
    )
    require_approval = models.BooleanField(default=False)
    auto_approve_timeout = models.PositiveIntegerField(
        default=0, help_text="Seconds after which a pending request is approved; 0 = never."
    )
    allowed_users = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="allowed_rooms")
    spectator_mode = models.CharField(max_length=16, choices=SpectatorMode.choices, default=SpectatorMode.LIVE_TRAINING)
    enable_metrics_overlay = models.BooleanField(default=True)
    enable_performance_graphs = models.BooleanField(default=True)
    enable_decision_visualization = models.BooleanField(default=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)

    objects = RoomQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["code"], condition=Q(status__in=["active", "paused"]), name="room_code_unique_while_live"
            ),
            models.CheckConstraint(
                condition=~Q(access_level="password") | ~Q(password_hash=""), name="room_password_level_has_hash"
            ),
        ]
        indexes = [
            models.Index(fields=["code"]),
            models.Index(fields=["status", "expires_at"]),
            models.Index(fields=["creator", "-created_at"]),
            models.Index(fields=["access_level", "status"]),
        ]

    def __str__(self):
        return f"{self.code} ({self.training_session_id})"

    def save(self, *args, **kwargs):
        self.code = (self.code or "").upper()
        super().save(*args, **kwargs)

    def is_expired(self, now=None) -> bool:
        return self.status == self.Status.EXPIRED or self.expires_at <= (now or timezone.now())

    def is_live(self, now=None) -> bool:
        return self.status in self.LIVE_STATUSES and not self.is_expired(now)


class Invitation(models.Model):
    """A named user's standing permission to join an invite-only or private room."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="invitations")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="room_invitations")
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["room", "user"], condition=Q(revoked_at__isnull=True), name="invitation_one_active_per_user"
            )
        ]

    def __str__(self):
        return f"{self.user} → {self.room.code}"


class JoinRequest(models.Model):
    """A request to join a room that requires approval."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        DENIED = "denied", "Denied"
        EXPIRED = "expired", "Expired"

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="join_requests")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="join_requests"
    )
    display_name = models.CharField(max_length=64)
    # SHA-256 of the secret an anonymous requester holds to poll their request.
    anon_key = models.CharField(max_length=64, blank=True, db_index=True)
    message = models.CharField(max_length=500, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    auto_approved = models.BooleanField(default=False)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["room", "user"], condition=Q(status="pending"), name="join_request_one_pending_per_user"
            ),
            models.CheckConstraint(
                condition=Q(user__isnull=False) | ~Q(anon_key=""), name="join_request_has_requester"
            ),
        ]
        indexes = [models.Index(fields=["room", "status"])]

    def __str__(self):
        return f"{self.display_name} → {self.room.code} ({self.status})"


class Spectator(models.Model):
    """Presence: someone admitted to a room, holding a seat until they leave."""

    class LeftReason(models.TextChoices):
        LEFT = "left", "Left"
        KICKED = "kicked", "Kicked"
        BANNED = "banned", "Banned"
        CLOSED = "closed", "Room closed"
        EXPIRED = "expired", "Room expired"
        TIMEOUT = "timeout", "Connection timed out"

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="spectators")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="spectating"
    )
    display_name = models.CharField(max_length=64)
    # SHA-256 of an anonymous spectator's browser-session key; ties rejoins and bans to it.
    anon_key = models.CharField(max_length=64, blank=True, db_index=True)
    joined_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(default=timezone.now)
    left_at = models.DateTimeField(null=True, blank=True)
    left_reason = models.CharField(max_length=16, choices=LeftReason.choices, blank=True)

    class Meta:
        ordering = ["joined_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["room", "user"], condition=Q(left_at__isnull=True), name="spectator_one_seat_per_user"
            ),
        ]
        indexes = [models.Index(fields=["room", "left_at"])]

    def __str__(self):
        return f"{self.display_name} in {self.room.code}"

    @property
    def is_present(self) -> bool:
        return self.left_at is None


class Ban(models.Model):
    """A user (or an anonymous browser) barred from a room until lifted."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="bans")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="room_bans"
    )
    anon_key = models.CharField(max_length=64, blank=True, db_index=True)
    display_name = models.CharField(max_length=64, blank=True)
    reason = models.CharField(max_length=500, blank=True)
    banned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    lifted_at = models.DateTimeField(null=True, blank=True)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["room", "user"], condition=Q(lifted_at__isnull=True), name="ban_one_active_per_user"
            ),
            models.CheckConstraint(condition=Q(user__isnull=False) | ~Q(anon_key=""), name="ban_has_target"),
        ]

    def __str__(self):
        return f"{self.display_name or self.user} banned from {self.room.code}"
