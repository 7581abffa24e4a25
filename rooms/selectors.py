"""Every read of rooms that a view, consumer, page or export needs."""

from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from metrics.models import MetricPoint
from rooms.models import (
    AccessLevel,
    AuditEntry,
    Ban,
    Invitation,
    InviteLink,
    JoinRequest,
    Room,
    RoomModerator,
    Spectator,
)

PUBLICLY_LISTED_LEVELS = (AccessLevel.PUBLIC, AccessLevel.PASSWORD)


def _latest_point(field: str) -> Subquery:
    """``field`` of the newest metric point of the room's training session (what it trains now)."""
    latest = MetricPoint.objects.filter(training_session_id=OuterRef("training_session_id")).order_by("-id")
    return Subquery(latest.values(field)[:1])


def _with_counts(rooms: QuerySet) -> QuerySet:
    return rooms.select_related("training_session", "creator").annotate(
        present_count=Count("spectators", filter=Q(spectators__left_at__isnull=True), distinct=True),
        pending_count=Count("join_requests", filter=Q(join_requests__status=JoinRequest.Status.PENDING), distinct=True),
        latest_episode=_latest_point("episode"),
        latest_total_episodes=_latest_point("total_episodes"),
        latest_algorithm=_latest_point("algorithm"),
    )


def room_list_for_user(user, *, include_ended: bool = False) -> QuerySet:
    """Rooms ``user`` manages: created by them, showing their training sessions, or moderated by them."""
    moderated = RoomModerator.objects.filter(user=user).values("room_id")
    rooms = Room.objects.filter(Q(creator=user) | Q(training_session__owner=user) | Q(pk__in=moderated))
    if not include_ended:
        rooms = rooms.filter(status__in=Room.LIVE_STATUSES, expires_at__gt=timezone.now())
    return _with_counts(rooms).order_by("-created_at")


def room_list_public() -> QuerySet:
    """Live rooms anyone may discover: listed public and password rooms. Never private or invite-only."""
    listed = Room.objects.live().filter(access_level__in=PUBLICLY_LISTED_LEVELS, listed=True)
    return _with_counts(listed).order_by("-created_at")


def room_get_by_ref(ref: str) -> Room | None:
    """The room a code (or id) names, visible or not: its live room, else its most recent one.

    Only for callers that check access themselves (a join ticket vouches for its holder).
    """
    from rooms.access import room_lookup_q

    rooms = Room.objects.select_related("training_session", "creator").filter(room_lookup_q(ref))
    return rooms.filter(status__in=Room.LIVE_STATUSES).first() or rooms.order_by("-created_at").first()


def room_progress(room: Room) -> dict:
    """What a room's training is at: its newest point's episode of how many, and the algorithm.

    Needs a room from these selectors (the ``latest_*`` annotations); the training session's
    own ``total_episodes`` and ``algorithm`` stand in for what its points leave out.
    """
    session = room.training_session
    return {
        "episode": getattr(room, "latest_episode", None),
        "total_episodes": getattr(room, "latest_total_episodes", None) or session.total_episodes,
        "algorithm": getattr(room, "latest_algorithm", None) or session.algorithm,
    }


def room_get_with_counts(room: Room) -> Room:
    return _with_counts(Room.objects.filter(pk=room.pk)).get()


def spectator_list(room: Room) -> QuerySet:
    """Spectators present in ``room``, earliest first."""
    return Spectator.objects.select_related("user").filter(room=room, left_at__isnull=True).order_by("joined_at")


def join_request_list(room: Room, *, status: str | None = JoinRequest.Status.PENDING) -> QuerySet:
    requests = JoinRequest.objects.select_related("user", "decided_by").filter(room=room)
    if status:
        requests = requests.filter(status=status)
    return requests.order_by("created_at")


def invitation_list(room: Room) -> QuerySet:
    return Invitation.objects.select_related("user", "invited_by").filter(room=room, revoked_at__isnull=True)


def ban_list(room: Room) -> QuerySet:
    """Bans in force against ``room``: its own and its creator's owner-wide ones (not timeouts)."""
    reach = Q(room=room) | Q(scope=Ban.Scope.OWNER, room__creator_id=room.creator_id)
    return Ban.objects.select_related("user", "banned_by").filter(
        reach, lifted_at__isnull=True, expires_at__isnull=True
    )


def timeout_list(room: Room) -> QuerySet:
    """Timeouts of ``room`` still running."""
    return Ban.objects.select_related("user", "banned_by").filter(
        room=room, lifted_at__isnull=True, expires_at__gt=timezone.now()
    )


def moderator_list(room: Room) -> QuerySet:
    return RoomModerator.objects.select_related("user", "added_by").filter(room=room).order_by("created_at")


def invite_link_list(room: Room) -> QuerySet:
    """Invite links of ``room`` not revoked, newest first (expired ones included, marked by ``expires_at``)."""
    return InviteLink.objects.select_related("user", "created_by").filter(room=room, revoked_at__isnull=True)


def audit_list(*, room: Room | None = None, owner=None) -> QuerySet:
    """Audit entries of one room, or of every room an owner created; newest first."""
    entries = AuditEntry.objects.all()
    if room is not None:
        entries = entries.filter(room=room)
    if owner is not None:
        entries = entries.filter(owner=owner)
    return entries.order_by("-created_at", "-id")
