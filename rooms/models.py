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
    approval_ttl = models.PositiveIntegerField(
        default=0, help_text="Seconds an approval lasts; a returning spectator asks again after it. 0 = forever."
    )
    waiting_message = models.CharField(max_length=500, blank=True, help_text="Shown to spectators in the waiting room.")
    locked = models.BooleanField(default=False, help_text="A locked room admits nobody new.")
    listed = models.BooleanField(default=True, help_text="Public rooms only: shown on the lobby (else link only).")
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
        SUSPENDED = "suspended", "Timed out by a moderator"
        WAITING = "waiting", "Sent back to the waiting room"

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
    """A user (or an anonymous browser) barred from a room until lifted, or timed out until ``expires_at``.

    ``scope=owner`` bars them from every room of the room's creator.
    """

    class Scope(models.TextChoices):
        ROOM = "room", "This room"
        OWNER = "owner", "All rooms of the owner"

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="bans")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="room_bans"
    )
    anon_key = models.CharField(max_length=64, blank=True, db_index=True)
    display_name = models.CharField(max_length=64, blank=True)
    reason = models.CharField(max_length=500, blank=True)
    scope = models.CharField(max_length=8, choices=Scope.choices, default=Scope.ROOM)
    # Set: a timeout that ends by itself at this moment. Unset: a ban until lifted.
    expires_at = models.DateTimeField(null=True, blank=True)
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
        kind = "timed out" if self.expires_at else "banned"
        return f"{self.display_name or self.user} {kind} from {self.room.code}"

    @property
    def is_timeout(self) -> bool:
        return self.expires_at is not None

    def is_active(self, now=None) -> bool:
        return self.lifted_at is None and (self.expires_at is None or self.expires_at > (now or timezone.now()))


class RoomModerator(models.Model):
    """A user with the creator's powers in one room, except deleting it or removing the creator."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="moderators")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="moderated_rooms")
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [models.UniqueConstraint(fields=["room", "user"], name="room_moderator_unique")]

    def __str__(self):
        return f"{self.user} moderates {self.room.code}"


class InviteLink(models.Model):
    """A revocable, expiring link that joins a room in one click; only a hash of its secret is kept."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="invite_links")
    secret_hash = models.CharField(max_length=64, unique=True)
    # Set: only this user may use the link.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="room_invite_links"
    )
    grants_password = models.BooleanField(default=False, help_text="Holders skip the room password.")
    label = models.CharField(max_length=100, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    uses = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["room", "revoked_at"])]

    def __str__(self):
        return f"invite link {self.pk} → {self.room.code}"

    def is_usable(self, now=None) -> bool:
        return self.revoked_at is None and self.expires_at > (now or timezone.now())


class AuditEntry(models.Model):
    """One moderation or access action: who did what to whom, in which room, when and from where."""

    class Action(models.TextChoices):
        ADMIT = "admit", "Admitted"
        JOIN = "join", "Took a seat"
        ADMIT_ALL = "admit_all", "Admitted everyone waiting"
        DENY = "deny", "Denied"
        SEND_TO_WAITING = "send_to_waiting", "Sent back to the waiting room"
        INVITE_LINK_JOIN = "invite_link_join", "Joined with an invite link"
        KICK = "kick", "Kicked"
        TIMEOUT = "timeout", "Timed out"
        TIMEOUT_END = "timeout_end", "Timeout ended"
        BAN = "ban", "Banned"
        UNBAN = "unban", "Unbanned"
        LOCK = "lock", "Locked"
        UNLOCK = "unlock", "Unlocked"
        LEVEL_CHANGE = "level_change", "Access level changed"
        APPROVAL_CHANGE = "approval_change", "Approval turned on or off"
        LISTING_CHANGE = "listing_change", "Listing changed"
        ACCESS_CHANGE = "access_change", "Access settings changed"
        PASSWORD_REGENERATE = "password_regenerate", "Password regenerated"
        MODERATOR_ADD = "moderator_add", "Moderator added"
        MODERATOR_REMOVE = "moderator_remove", "Moderator removed"
        INVITE = "invite", "Invited"
        INVITE_REVOKE = "invite_revoke", "Invitation revoked"
        INVITE_LINK_CREATE = "invite_link_create", "Invite link created"
        INVITE_LINK_REVOKE = "invite_link_revoke", "Invite link revoked"
        ROOM_CLOSE = "room_close", "Room closed"

    room = models.ForeignKey(Room, on_delete=models.SET_NULL, null=True, blank=True, related_name="audit_entries")
    room_code = models.CharField(max_length=ROOM_CODE_LENGTH, blank=True)
    # The room's creator, kept so an owner's trail outlives a deleted room.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    action = models.CharField(max_length=24, choices=Action.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    actor_name = models.CharField(max_length=150, blank=True)
    target_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    target_name = models.CharField(max_length=150, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "audit entries"
        indexes = [models.Index(fields=["room", "-created_at"]), models.Index(fields=["owner", "-created_at"])]

    def __str__(self):
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.room_code} {self.action} {self.target_name}"
