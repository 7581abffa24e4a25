"""Moderation beyond single approvals: admit all, the waiting room, locks, room moderators and
timeouts. Every action re-checks access and writes its audit entry in its own transaction."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from rooms import access, audit, events
from rooms.models import Ban, JoinRequest, Room, RoomModerator, Spectator
from rooms.services import _join_request_decide, _remove_everywhere, ban_target, require_manager, room_leave

MAX_TIMEOUT_SECONDS = 30 * 24 * 3600


@transaction.atomic
def join_requests_admit_all(*, room: Room, actor, ip: str | None = None) -> int:
    """Approve every pending request of ``room``; return how many were admitted."""
    require_manager(actor, room)
    pending = list(
        JoinRequest.objects.select_related("user", "room").filter(room=room, status=JoinRequest.Status.PENDING)
    )
    admitted = 0
    for join_request in pending:
        decided = _join_request_decide(join_request, approver=actor, approved=True, ip=ip, details={"bulk": True})
        admitted += int(decided.status == JoinRequest.Status.APPROVED)
    audit.audit_record(action=audit.Action.ADMIT_ALL, room=room, actor=actor, ip=ip, details={"admitted": admitted})
    return admitted


@transaction.atomic
def spectator_send_to_waiting(*, spectator: Spectator, actor, ip: str | None = None) -> JoinRequest:
    """Send an admitted spectator back to the waiting room: their seat is freed, their sockets get
    a ``waiting`` message and close with 4202, and a new pending request stands in their name.

    Raises ``ValidationError`` when the room does not require approval, for managers and for
    spectators who already left.
    """
    room = spectator.room
    require_manager(actor, room)
    if not room.require_approval:
        raise ValidationError({"require_approval": "Turn approval on to use the waiting room."})
    if spectator.user_id is not None and access.can_manage_room(spectator.user, room):
        raise ValidationError({"spectator_id": "Room managers never wait."})
    if not spectator.is_present:
        raise ValidationError({"spectator_id": "This spectator has already left."})
    room_leave(spectator=spectator, reason=Spectator.LeftReason.WAITING)
    join_request = JoinRequest(
        room=room,
        user=spectator.user,
        anon_key=spectator.anon_key if spectator.user_id is None else "",
        display_name=spectator.display_name,
    )
    join_request.full_clean(validate_constraints=False)
    join_request.save()
    audit.audit_record(
        action=audit.Action.SEND_TO_WAITING,
        room=room,
        actor=actor,
        target_user=spectator.user,
        target_name=spectator.display_name,
        ip=ip,
        details={"spectator_id": spectator.pk, "request_id": join_request.pk},
    )
    events.publish_after_commit(room, events.join_request_created(join_request))
    events.publish_sent_to_waiting_after_commit(spectator, join_request, place=join_request_place(join_request))
    return join_request


def join_request_place(join_request: JoinRequest) -> int | None:
    """Where a pending request stands in its room's line, from 1; None once decided."""
    if join_request.status != JoinRequest.Status.PENDING:
        return None
    ahead = JoinRequest.objects.filter(
        room_id=join_request.room_id, status=JoinRequest.Status.PENDING, created_at__lt=join_request.created_at
    ).count()
    return ahead + 1


@transaction.atomic
def room_lock(*, room: Room, actor, locked: bool, ip: str | None = None) -> Room:
    """Lock (nobody new gets in; those present stay) or unlock a room. Idempotent."""
    require_manager(actor, room)
    if not room.is_live():
        raise ValidationError({"room": "This room is no longer live."})
    if Room.objects.filter(pk=room.pk, locked=not locked).update(locked=locked):
        audit.audit_record(action=audit.Action.LOCK if locked else audit.Action.UNLOCK, room=room, actor=actor, ip=ip)
    room.refresh_from_db()
    return room


@transaction.atomic
def moderator_add(*, room: Room, username: str, actor, ip: str | None = None) -> tuple[RoomModerator, bool]:
    """Name a user moderator of ``room``; return the moderator and whether it is new."""
    require_manager(actor, room)
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise ValidationError({"username": "Unknown user."})
    if access.can_own_room(user, room) and not user.is_staff:
        raise ValidationError({"username": "The room's owner already has every power."})
    moderator, created = RoomModerator.objects.get_or_create(room=room, user=user, defaults={"added_by": actor})
    if created:
        audit.audit_record(action=audit.Action.MODERATOR_ADD, room=room, actor=actor, target_user=user, ip=ip)
    return moderator, created


@transaction.atomic
def moderator_remove(*, moderator: RoomModerator, actor, ip: str | None = None) -> None:
    """Take a user's moderator powers in a room away (the creator is never a ``RoomModerator``)."""
    require_manager(actor, moderator.room)
    if moderator.user_id == actor.pk and not access.can_own_room(actor, moderator.room):
        raise PermissionDenied("Ask the room's owner or another moderator to remove you.")
    audit.audit_record(
        action=audit.Action.MODERATOR_REMOVE, room=moderator.room, actor=actor, target_user=moderator.user, ip=ip
    )
    moderator.delete()


@transaction.atomic
def timeout_create(
    *,
    room: Room,
    actor,
    duration_seconds: int,
    user=None,
    spectator: Spectator | None = None,
    reason: str = "",
    ip: str | None = None,
) -> Ban:
    """Time a user or a present spectator out: they leave now and cannot return until it ends.

    A running timeout is replaced (longer or shorter). Raises ``ValidationError`` for a bad
    duration, managers, an empty target or someone already banned.
    """
    require_manager(actor, room)
    if not (0 < duration_seconds <= MAX_TIMEOUT_SECONDS):
        raise ValidationError({"duration_seconds": f"Must be more than 0 and at most {MAX_TIMEOUT_SECONDS}."})
    target = ban_target(room=room, user=user, spectator=spectator, verb="time out", past="timed out")
    existing = target.open_ban
    if existing is not None and existing.expires_at is None:
        raise ValidationError({"username": "Already banned from this room; lift the ban instead."})
    expires_at = timezone.now() + timedelta(seconds=duration_seconds)
    if existing is not None:
        existing.expires_at, existing.reason, existing.banned_by = expires_at, reason[:500], actor
        existing.save(update_fields=["expires_at", "reason", "banned_by"])
        timeout = existing
    else:
        timeout = target.ban_new(room=room, actor=actor, reason=reason, expires_at=expires_at)
    target.audit(
        action=audit.Action.TIMEOUT,
        room=room,
        actor=actor,
        ip=ip,
        details={"ban_id": timeout.pk, "until": expires_at.isoformat(), **({"reason": reason} if reason else {})},
    )
    _remove_everywhere(room, target.visitor, reason=Spectator.LeftReason.SUSPENDED, actor=actor, scope=Ban.Scope.ROOM)
    return timeout
