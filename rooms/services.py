"""Every write to rooms, invitations, join requests, presence and bans.

Services re-check access themselves (``rooms.access``); callers only parse input.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, replace
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from metrics.models import TrainingSession
from rooms import access, audit, events
from rooms.access import AccessRefused, Refusal, Verdict, Visitor
from rooms.codes import room_code_generate, room_code_is_valid, room_code_normalize
from rooms.lockout import lockout_check, lockout_clear, lockout_record_failure
from rooms.models import AccessLevel, Ban, Invitation, JoinRequest, Room, Spectator, SpectatorMode
from rooms.passwords import room_password_hash

GENERATED_PASSWORD_BYTES = 9  # 12 URL-safe characters
MAX_DISPLAY_NAME = 64


def room_password_generate() -> str:
    return secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)


def anon_key_for(secret: str) -> str:
    """Hash an anonymous visitor's secret; only the hash is stored."""
    return hashlib.sha256(secret.encode()).hexdigest() if secret else ""


def display_name_clean(raw: str | None, *, fallback: str) -> str:
    """Strip a display name and refuse control characters; empty falls back."""
    name = " ".join((raw or "").split())
    if not name:
        return fallback[:MAX_DISPLAY_NAME]
    if len(name) > MAX_DISPLAY_NAME:
        raise ValidationError({"display_name": f"At most {MAX_DISPLAY_NAME} characters."})
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise ValidationError({"display_name": "Control characters are not allowed."})
    return name


def require_manager(actor, room: Room) -> None:
    """Raise ``PermissionDenied`` unless ``actor`` manages ``room`` (its owners and moderators)."""
    if not access.can_manage_room(actor, room):
        raise PermissionDenied("Only the room's creator or a moderator can do this.")


def _users_by_username(usernames, *, field: str) -> list:
    names = sorted({str(name).strip() for name in usernames or () if str(name).strip()})
    users = list(get_user_model().objects.filter(username__in=names))
    missing = sorted(set(names) - {user.username for user in users})
    if missing:
        raise ValidationError({field: f"Unknown user(s): {', '.join(missing)}."})
    return users


def _check_password_input(access_level: str, password: str | None) -> None:
    if password is not None and access_level == AccessLevel.PASSWORD and not (4 <= len(password) <= 128):
        raise ValidationError({"password": "A room password has 4 to 128 characters."})


# --- Rooms --------------------------------------------------------------------------------


@transaction.atomic
def room_create(
    *,
    creator,
    training_session: TrainingSession,
    access_level: str = AccessLevel.PUBLIC,
    password: str | None = None,
    max_spectators: int = 10,
    allowed_users=(),
    blocked_users=(),
    require_approval: bool = False,
    auto_approve_timeout: int = 0,
    duration_hours: float = 24,
    custom_code: str | None = None,
    spectator_mode: str = SpectatorMode.LIVE_TRAINING,
    name: str = "",
    enable_metrics_overlay: bool = True,
    enable_performance_graphs: bool = True,
    enable_decision_visualization: bool = True,
) -> tuple[Room, str | None]:
    """Create a room for ``training_session``; return it and its password in clear, shown once.

    A password room without a password gets a generated one. Raises ``PermissionDenied``
    when ``creator`` does not manage the training session, ``ValidationError`` naming the
    field for bad input (a custom code that is malformed or taken by a live room).
    """
    if not access.can_manage_training_session(creator, training_session):
        raise PermissionDenied("You can only create rooms for your own training sessions.")
    if not training_session.is_open:
        raise ValidationError({"training_session_id": "This training session is closed."})
    if access_level not in AccessLevel.values:
        raise ValidationError({"access_level": f"Choose one of: {', '.join(AccessLevel.values)}."})
    if not (0 < duration_hours <= settings.SPECTATOR_MAX_ROOM_HOURS):
        raise ValidationError(
            {"room_duration_hours": f"Must be more than 0 and at most {settings.SPECTATOR_MAX_ROOM_HOURS}."}
        )
    _check_password_input(access_level, password)
    plain_password = None
    if access_level == AccessLevel.PASSWORD:
        plain_password = password or room_password_generate()
    allowed = _users_by_username(allowed_users, field="allowed_users")
    blocked = _users_by_username(blocked_users, field="blocked_users")

    room = Room(
        training_session=training_session,
        creator=creator,
        name=name,
        access_level=access_level,
        password_hash=room_password_hash(plain_password) if plain_password else "",
        max_spectators=max_spectators,
        require_approval=require_approval,
        auto_approve_timeout=auto_approve_timeout,
        spectator_mode=spectator_mode,
        enable_metrics_overlay=enable_metrics_overlay,
        enable_performance_graphs=enable_performance_graphs,
        enable_decision_visualization=enable_decision_visualization,
        expires_at=timezone.now() + timedelta(hours=duration_hours),
    )
    if custom_code:
        room.code = room_code_normalize(custom_code)
        if not room_code_is_valid(room.code):
            raise ValidationError(
                {"custom_room_code": "A room code is 6 characters from A-Z and 2-9, without O, I, 0 and 1."}
            )
        if Room.objects.live().filter(code=room.code).exists():
            raise ValidationError({"custom_room_code": "This code is in use by a live room."})
        # A room past its expiry that the sweep has not reached yet still holds the code.
        stale_rooms = Room.objects.filter(code=room.code, status__in=Room.LIVE_STATUSES, expires_at__lte=timezone.now())
        for stale in stale_rooms:
            _room_end(stale, status=Room.Status.EXPIRED)
        _room_save_new(room, retry_codes=False)
    else:
        _room_save_new(room, retry_codes=True)
    room.allowed_users.set(allowed)
    for user in blocked:
        Ban.objects.create(room=room, user=user, display_name=user.get_username(), banned_by=creator)
    return room, plain_password


def _room_save_new(room: Room, *, retry_codes: bool) -> None:
    attempts = 20 if retry_codes else 1
    for _ in range(attempts):
        if retry_codes:
            room.code = room_code_generate()
        room.full_clean(exclude=["allowed_users"], validate_constraints=False)
        try:
            with transaction.atomic():
                room.save(force_insert=True)
            return
        except IntegrityError:
            # A code can be stale-but-unexpired (status not yet swept); free it and retry.
            if not retry_codes:
                raise ValidationError({"custom_room_code": "This code is in use by a live room."}) from None
    raise ValidationError({"custom_room_code": "Could not find a free room code; try again."})


@transaction.atomic
def room_close(*, room: Room, actor, ip: str | None = None) -> Room:
    """Close a room: everyone present leaves, pending requests expire. Idempotent.

    Raises ``PermissionDenied`` unless ``actor`` owns the room (moderators cannot close it).
    """
    if not access.can_own_room(actor, room):
        raise PermissionDenied("Only the room's creator can close it.")
    if _room_end(room, status=Room.Status.CLOSED):
        audit.audit_record(action=audit.Action.ROOM_CLOSE, room=room, actor=actor, ip=ip)
    return room


def _room_end(room: Room, *, status: str) -> bool:
    """Move a live room to ``status`` (closed or expired) once; False if it had already ended."""
    now = timezone.now()
    updated = Room.objects.filter(pk=room.pk, status__in=Room.LIVE_STATUSES).update(status=status, closed_at=now)
    room.refresh_from_db()
    if not updated:
        return False
    reason = Spectator.LeftReason.CLOSED if status == Room.Status.CLOSED else Spectator.LeftReason.EXPIRED
    Spectator.objects.filter(room=room, left_at__isnull=True).update(left_at=now, left_reason=reason)
    JoinRequest.objects.filter(room=room, status=JoinRequest.Status.PENDING).update(
        status=JoinRequest.Status.EXPIRED, decided_at=now
    )
    events.publish_after_commit(room, events.room_closed(room), close_code=events.CLOSE_GONE)
    return True


@transaction.atomic
def room_password_regenerate(*, room: Room, actor, ip: str | None = None) -> str:
    """Give a password room a new generated password; return it in clear, shown once."""
    require_manager(actor, room)
    if room.access_level != AccessLevel.PASSWORD:
        raise ValidationError({"access_level": "Only password rooms have a password."})
    password = room_password_generate()
    room.password_hash = room_password_hash(password)
    room.save(update_fields=["password_hash"])
    audit.audit_record(action=audit.Action.PASSWORD_REGENERATE, room=room, actor=actor, ip=ip)
    return password


@transaction.atomic
def room_access_update(
    *,
    room: Room,
    actor,
    access_level: str | None = None,
    password: str | None = None,
    max_spectators: int | None = None,
    require_approval: bool | None = None,
    auto_approve_timeout: int | None = None,
    allowed_users=None,
    room_duration_hours: float | None = None,
    listed: bool | None = None,
    approval_ttl: int | None = None,
    waiting_message: str | None = None,
    ip: str | None = None,
) -> tuple[Room, str | None]:
    """Change a live room's access control; return it and a new password in clear if one was set.

    Moving to ``password`` without a password generates one. Leaving ``password`` drops the
    hash. Turning approval off admits everyone waiting. Each change is audited.
    """
    require_manager(actor, room)
    before = _access_settings(room)
    if not room.is_live():
        raise ValidationError({"room": "This room is no longer live."})
    new_password = None
    if access_level is not None:
        if access_level not in AccessLevel.values:
            raise ValidationError({"access_level": f"Choose one of: {', '.join(AccessLevel.values)}."})
        if access_level == AccessLevel.PASSWORD and room.access_level != AccessLevel.PASSWORD and not password:
            new_password = room_password_generate()
        room.access_level = access_level
    if password is not None:
        if room.access_level != AccessLevel.PASSWORD:
            raise ValidationError({"password": "Only password rooms have a password."})
        _check_password_input(room.access_level, password)
        new_password = password
    if new_password:
        room.password_hash = room_password_hash(new_password)
    if room.access_level != AccessLevel.PASSWORD:
        room.password_hash = ""
    if max_spectators is not None:
        room.max_spectators = max_spectators
    if auto_approve_timeout is not None:
        room.auto_approve_timeout = auto_approve_timeout
    if room_duration_hours is not None:
        if not (0 < room_duration_hours <= settings.SPECTATOR_MAX_ROOM_HOURS):
            raise ValidationError(
                {"room_duration_hours": f"Must be more than 0 and at most {settings.SPECTATOR_MAX_ROOM_HOURS}."}
            )
        room.expires_at = room.created_at + timedelta(hours=room_duration_hours)
    if listed is not None:
        room.listed = listed
    if approval_ttl is not None:
        room.approval_ttl = approval_ttl
    if waiting_message is not None:
        room.waiting_message = waiting_message
    approval_turned_off = require_approval is False and room.require_approval
    if require_approval is not None:
        room.require_approval = require_approval
    room.full_clean(exclude=["allowed_users"], validate_constraints=False)
    room.save()
    allowed_change = {}
    if allowed_users is not None:
        users = _users_by_username(allowed_users, field="allowed_users")
        had = set(room.allowed_users.values_list("username", flat=True))
        room.allowed_users.set(users)
        has = {user.username for user in users}
        if had != has:
            allowed_change = {"allowed_users": {"added": sorted(has - had), "removed": sorted(had - has)}}
    _audit_access_changes(room, before, actor=actor, ip=ip, password_set=bool(new_password), extra=allowed_change)
    if approval_turned_off:
        for join_request in JoinRequest.objects.filter(room=room, status=JoinRequest.Status.PENDING):
            _join_request_decide(join_request, approver=actor, approved=True, ip=ip)
    return room, new_password


def _access_settings(room: Room) -> dict:
    """The audited access settings of ``room``, as they read now."""
    return {
        "access_level": room.access_level,
        "require_approval": room.require_approval,
        "listed": room.listed,
        "max_spectators": room.max_spectators,
        "auto_approve_timeout": room.auto_approve_timeout,
        "approval_ttl": room.approval_ttl,
        "waiting_message": room.waiting_message,
        "expires_at": room.expires_at.isoformat(),
    }


def _audit_access_changes(room: Room, before: dict, *, actor, ip, password_set: bool, extra: dict) -> None:
    after = _access_settings(room)
    changed = {field: {"from": before[field], "to": after[field]} for field in after if before[field] != after[field]}
    own_actions = {
        "access_level": audit.Action.LEVEL_CHANGE,
        "require_approval": audit.Action.APPROVAL_CHANGE,
        "listed": audit.Action.LISTING_CHANGE,
    }
    for field, action in own_actions.items():
        if field in changed:
            audit.audit_record(action=action, room=room, actor=actor, ip=ip, details=changed.pop(field))
    changed |= extra
    if changed or password_set:
        details = {**changed, **({"password": "set"} if password_set else {})}
        audit.audit_record(action=audit.Action.ACCESS_CHANGE, room=room, actor=actor, ip=ip, details=details)


# --- Joining ----------------------------------------------------------------------------


@dataclass(frozen=True)
class JoinResult:
    status: str  # "approved" or "pending_approval"
    room: Room
    spectator: Spectator | None = None
    join_request: JoinRequest | None = None


@transaction.atomic
def room_join(
    *,
    room: Room,
    visitor: Visitor,
    display_name: str | None = None,
    password: str | None = None,
    message: str = "",
    client: str = "",
    invite_token: str = "",
    ip: str | None = None,
) -> JoinResult:
    """Admit ``visitor`` to ``room`` (taking a seat) or file a join request.

    ``invite_token`` is an invite link's token (``rooms.invite_links``). Raises
    ``AccessRefused`` with the reason, ``LockedOut`` after too many wrong passwords from
    ``client``, ``ValidationError`` for a bad display name. The seat count is taken under a
    row lock on the room, so two joins for the last seat cannot both win.
    """
    from rooms.invite_links import invite_link_grant, invite_link_used

    room = Room.objects.select_for_update().get(pk=room.pk)
    if visitor.signed_in:
        fallback = visitor.user.get_username()
    else:
        fallback = f"Guest-{secrets.token_hex(2).upper()}"
    name = display_name_clean(display_name, fallback=fallback)
    lockout_key = client or visitor.anon_key or "unknown"

    link_grant, link = invite_link_grant(room, visitor, invite_token)
    facts = access.join_facts(room, visitor, link=link_grant)
    if access.needs_password(facts) and password:
        lockout_check(room_id=room.pk, client=lockout_key)
        facts = replace(facts, password=access.password_check(room, password))
    decision = access.decide_join(facts)

    if decision.refusal == Refusal.WRONG_PASSWORD:
        lockout_record_failure(room_id=room.pk, client=lockout_key)
    elif facts.password == access.PasswordCheck.RIGHT:
        lockout_clear(room_id=room.pk, client=lockout_key)

    join_request = access.latest_join_request(room, visitor)
    if decision.verdict == Verdict.PENDING and _auto_approve_due(room, join_request):
        _join_request_decide(join_request, approver=None, approved=True, auto=True)
        decision = access.decide_join(
            replace(access.join_facts(room, visitor, link=link_grant), password=facts.password)
        )

    if decision.verdict == Verdict.REFUSE:
        raise AccessRefused(decision.refusal)
    if decision.verdict == Verdict.REQUEST_APPROVAL:
        join_request = JoinRequest(
            room=room,
            user=visitor.user if visitor.signed_in else None,
            anon_key="" if visitor.signed_in else visitor.anon_key,
            display_name=name,
            message=message[:500],
        )
        join_request.full_clean(validate_constraints=False)
        join_request.save()
        events.publish_after_commit(room, events.join_request_created(join_request))
        return JoinResult(status="pending_approval", room=room, join_request=join_request)
    if decision.verdict == Verdict.PENDING:
        return JoinResult(status="pending_approval", room=room, join_request=join_request)

    spectator = access.current_spectator(room, visitor)
    if spectator is None:
        approved = join_request is not None and join_request.status == JoinRequest.Status.APPROVED
        if approved and not (display_name or "").strip():
            # Seat the visitor under the name the approver saw, not a fallback.
            name = join_request.display_name
        spectator = Spectator.objects.create(
            room=room,
            user=visitor.user if visitor.signed_in else None,
            anon_key="" if visitor.signed_in else visitor.anon_key,
            display_name=name,
        )
        if link is not None:
            invite_link_used(link, visitor=visitor, display_name=name, ip=ip)
        else:
            audit.audit_record(
                action=audit.Action.JOIN,
                room=room,
                actor=visitor.user if visitor.signed_in else None,
                actor_name=name,
                target_user=visitor.user if visitor.signed_in else None,
                target_name=name,
                ip=ip,
                details={"via": _admitted_via(facts, approved)},
            )
        events.publish_spectator_list_after_commit(room)
    else:
        Spectator.objects.filter(pk=spectator.pk).update(last_seen_at=timezone.now())
    return JoinResult(status="approved", room=room, spectator=spectator, join_request=join_request)


def _admitted_via(facts: access.JoinFacts, approved: bool) -> str:
    """Why a seat was given, for the audit trail (an approval has its own entry by the approver)."""
    if facts.is_manager:
        return "manager"
    if approved:
        return "approval"
    if facts.password == access.PasswordCheck.RIGHT:
        return "password"
    if facts.is_allowed and facts.access_level != AccessLevel.PUBLIC:
        return "invitation"
    return facts.access_level


def _auto_approve_due(room: Room, join_request: JoinRequest | None, now=None) -> bool:
    return bool(
        join_request is not None
        and join_request.status == JoinRequest.Status.PENDING
        and room.auto_approve_timeout > 0
        and join_request.created_at + timedelta(seconds=room.auto_approve_timeout) <= (now or timezone.now())
    )


@transaction.atomic
def room_leave(*, spectator: Spectator, reason: str = Spectator.LeftReason.LEFT) -> Spectator:
    """Free a spectator's seat. Idempotent."""
    now = timezone.now()
    if Spectator.objects.filter(pk=spectator.pk, left_at__isnull=True).update(left_at=now, left_reason=reason):
        spectator.left_at, spectator.left_reason = now, reason
        events.publish_spectator_list_after_commit(spectator.room)
    else:
        spectator.refresh_from_db()
    return spectator


# --- Approval -------------------------------------------------------------------------------


def _join_request_decide(
    join_request: JoinRequest, *, approver, approved: bool, auto: bool = False, ip: str | None = None, details=None
) -> JoinRequest:
    new_status = JoinRequest.Status.APPROVED if approved else JoinRequest.Status.DENIED
    now = timezone.now()
    updated = JoinRequest.objects.filter(pk=join_request.pk, status=JoinRequest.Status.PENDING).update(
        status=new_status, decided_at=now, decided_by=approver, auto_approved=auto
    )
    join_request.refresh_from_db()
    if updated:
        audit.audit_record(
            action=audit.Action.ADMIT if approved else audit.Action.DENY,
            room=join_request.room,
            actor=approver,
            target_user=join_request.user,
            target_name=join_request.display_name,
            ip=ip,
            details={"request_id": join_request.pk, **({"auto": True} if auto else {}), **(details or {})},
        )
        events.publish_after_commit(join_request.room, events.join_request_decided(join_request))
    return join_request


@transaction.atomic
def join_request_decide(*, join_request: JoinRequest, approver, approved: bool, ip: str | None = None) -> JoinRequest:
    """Approve or deny a pending join request.

    Raises ``PermissionDenied`` unless ``approver`` manages the room, ``ValidationError``
    (field ``status``) when the request is no longer pending.
    """
    require_manager(approver, join_request.room)
    if join_request.status != JoinRequest.Status.PENDING:
        raise ValidationError({"status": f"This request is already {join_request.status}."})
    return _join_request_decide(join_request, approver=approver, approved=approved, ip=ip)


# --- Invitations -----------------------------------------------------------------------


@transaction.atomic
@transaction.atomic
def invitation_create(*, room: Room, username: str, actor, ip: str | None = None) -> tuple[Invitation, bool]:
    """Invite a user by username; return the active invitation and whether it is new (audited)."""
    require_manager(actor, room)
    (user,) = _users_by_username([username], field="username")
    existing = Invitation.objects.filter(room=room, user=user, revoked_at__isnull=True).first()
    if existing is not None:
        return existing, False
    invitation = Invitation.objects.create(room=room, user=user, invited_by=actor)
    audit.audit_record(
        action=audit.Action.INVITE,
        room=room,
        actor=actor,
        target_user=user,
        target_name=user.get_username(),
        ip=ip,
        details={"invitation_id": invitation.pk},
    )
    return invitation, True


@transaction.atomic
def invitation_revoke(*, invitation: Invitation, actor, ip: str | None = None) -> Invitation:
    """Revoke an invitation; spectators already present stay. Idempotent (audited once)."""
    require_manager(actor, invitation.room)
    revoked = Invitation.objects.filter(pk=invitation.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    invitation.refresh_from_db()
    if revoked:
        audit.audit_record(
            action=audit.Action.INVITE_REVOKE,
            room=invitation.room,
            actor=actor,
            target_user=invitation.user,
            target_name=invitation.user.get_username(),
            ip=ip,
            details={"invitation_id": invitation.pk},
        )
    return invitation


# --- Moderation -------------------------------------------------------------------------


@transaction.atomic
def spectator_kick(*, spectator: Spectator, actor, ip: str | None = None) -> Spectator:
    """Remove a spectator from the room; they may join again."""
    require_manager(actor, spectator.room)
    if spectator.user_id is not None and access.can_manage_room(spectator.user, spectator.room):
        raise ValidationError({"spectator": "Room managers cannot be kicked."})
    was_present = spectator.is_present
    spectator = room_leave(spectator=spectator, reason=Spectator.LeftReason.KICKED)
    if was_present:
        audit.audit_record(
            action=audit.Action.KICK,
            room=spectator.room,
            actor=actor,
            target_user=spectator.user,
            target_name=spectator.display_name,
            ip=ip,
            details={"spectator_id": spectator.pk},
        )
    events.publish_removal_after_commit(spectator)
    return spectator


@transaction.atomic
def ban_create(
    *,
    room: Room,
    actor,
    user=None,
    spectator: Spectator | None = None,
    reason: str = "",
    scope: str = Ban.Scope.ROOM,
    ip: str | None = None,
) -> Ban:
    """Ban a user or a present spectator: they leave now and cannot join again until unbanned.

    ``scope=owner`` bars them from every room of this room's creator. A running timeout
    becomes the ban. Their pending requests are denied. Raises ``ValidationError`` for
    managers, an empty target or an unknown scope.
    """
    require_manager(actor, room)
    if scope not in Ban.Scope.values:
        raise ValidationError({"scope": f"Choose one of: {', '.join(Ban.Scope.values)}."})
    target = ban_target(room=room, user=user, spectator=spectator, verb="ban", past="banned")
    ban = target.open_ban
    if ban is not None and ban.expires_at is not None:
        # A timeout (running or ended but never lifted) turns into the ban.
        ban.expires_at, ban.reason, ban.banned_by, ban.scope = None, reason[:500] or ban.reason, actor, scope
        ban.save(update_fields=["expires_at", "reason", "banned_by", "scope"])
    elif ban is not None and ban.scope != scope:
        ban.scope = scope
        ban.save(update_fields=["scope"])
    if ban is None:
        ban = target.ban_new(room=room, actor=actor, reason=reason, scope=scope)
    target.audit(
        action=audit.Action.BAN,
        room=room,
        actor=actor,
        ip=ip,
        details={"ban_id": ban.pk, "scope": scope, **({"reason": ban.reason} if ban.reason else {})},
    )
    _remove_everywhere(room, target.visitor, reason=Spectator.LeftReason.BANNED, actor=actor, scope=scope)
    return ban


@dataclass(frozen=True)
class BanTarget:
    user: object | None
    anon_key: str  # for a visitor who is not signed in
    visitor: Visitor
    display_name: str
    open_ban: Ban | None  # their ban or timeout in this room that nobody lifted

    def ban_new(self, *, room: Room, actor, reason: str, **fields) -> Ban:
        """A new Ban row (a ban, or a timeout with ``expires_at``) for this target."""
        return Ban.objects.create(
            room=room,
            user=self.user,
            anon_key=self.anon_key,
            display_name=self.display_name,
            reason=reason[:500],
            banned_by=actor,
            **fields,
        )

    def audit(self, *, action: str, room: Room, actor, ip: str | None, details: dict) -> None:
        audit.audit_record(
            action=action,
            room=room,
            actor=actor,
            target_user=self.user,
            target_name=self.display_name,
            ip=ip,
            details=details,
        )


def ban_target(*, room: Room, user=None, spectator: Spectator | None = None, verb: str, past: str) -> BanTarget:
    """Whom a ban or timeout is for (a user, or a present spectator, signed in or not).

    Raises ``ValidationError`` naming ``username`` for an empty target or a room manager.
    """
    if spectator is not None:
        user = spectator.user
    if user is None and (spectator is None or not spectator.anon_key):
        raise ValidationError({"username": f"Name a user or a spectator to {verb}."})
    if user is not None and access.can_manage_room(user, room):
        raise ValidationError({"username": f"Room managers cannot be {past}."})
    if user is not None:
        return BanTarget(
            user=user,
            anon_key="",
            visitor=Visitor(user=user),
            display_name=user.get_username(),
            open_ban=Ban.objects.filter(room=room, user=user, lifted_at__isnull=True).first(),
        )
    return BanTarget(
        user=None,
        anon_key=spectator.anon_key,
        visitor=Visitor(anon_key=spectator.anon_key),
        display_name=spectator.display_name,
        open_ban=Ban.objects.filter(
            room=room, user__isnull=True, anon_key=spectator.anon_key, lifted_at__isnull=True
        ).first(),
    )


def _remove_everywhere(room: Room, visitor: Visitor, *, reason: str, actor, scope: str) -> None:
    """Free the barred visitor's seats and deny their pending requests, in ``room`` or (owner
    scope) in every live room of its creator."""
    rooms = [room]
    if scope == Ban.Scope.OWNER:
        rooms = list(Room.objects.live().filter(creator_id=room.creator_id))
    for each in rooms:
        present = access.current_spectator(each, visitor)
        if present is not None:
            room_leave(spectator=present, reason=reason)
            events.publish_removal_after_commit(present)
        pending = access.latest_join_request(each, visitor)
        if pending is not None and pending.status == JoinRequest.Status.PENDING:
            _join_request_decide(pending, approver=actor, approved=False)


@transaction.atomic
def ban_lift(*, ban: Ban, actor, ip: str | None = None) -> Ban:
    """Lift a ban, or end a timeout early. Idempotent."""
    require_manager(actor, ban.room)
    if Ban.objects.filter(pk=ban.pk, lifted_at__isnull=True).update(lifted_at=timezone.now(), lifted_by=actor):
        audit.audit_record(
            action=audit.Action.TIMEOUT_END if ban.expires_at else audit.Action.UNBAN,
            room=ban.room,
            actor=actor,
            target_user=ban.user,
            target_name=ban.display_name,
            ip=ip,
            details={"ban_id": ban.pk},
        )
    ban.refresh_from_db()
    return ban


# --- Sweeps ----------------------------------------------------------------------------


def rooms_expire(*, now=None) -> int:
    """Mark live rooms past their expiry as expired; everyone present leaves. Return how many.

    Safe to run in several processes at once: each room changes state once.
    """
    now = now or timezone.now()
    expired = 0
    for room in Room.objects.filter(status__in=Room.LIVE_STATUSES, expires_at__lte=now):
        with transaction.atomic():
            expired += int(_room_end(room, status=Room.Status.EXPIRED))
    return expired


def join_requests_auto_approve(*, now=None) -> int:
    """Approve pending requests whose room's auto-approval timeout has passed. Return how many."""
    now = now or timezone.now()
    approved = 0
    pending = JoinRequest.objects.select_related("room").filter(
        status=JoinRequest.Status.PENDING, room__auto_approve_timeout__gt=0, room__status__in=Room.LIVE_STATUSES
    )
    for join_request in pending:
        if _auto_approve_due(join_request.room, join_request, now):
            with transaction.atomic():
                decided = _join_request_decide(join_request, approver=None, approved=True, auto=True)
            approved += int(decided.auto_approved)
    return approved


# --- Live connections ----------------------------------------------------------------------

RECONNECTABLE = (Spectator.LeftReason.LEFT, Spectator.LeftReason.TIMEOUT)


@transaction.atomic
def room_reconnect(*, room: Room, spectator_id: int) -> Spectator:
    """Seat the holder of a valid join ticket again (a socket reconnecting, another tab).

    The ticket vouches for the password and approval it was issued after; a spectator who
    was kicked or banned, a closed room, a ban since, or a full room still refuse
    (``AccessRefused``).
    """
    room = Room.objects.select_for_update().get(pk=room.pk)
    spectator = Spectator.objects.select_related("user").filter(pk=spectator_id, room=room).first()
    if spectator is None:
        raise AccessRefused(Refusal.NOT_FOUND)
    # A seat lost to the room ending falls through to the decision: room_closed / room_expired (4410).
    ended = (Spectator.LeftReason.CLOSED, Spectator.LeftReason.EXPIRED)
    if spectator.left_at is not None and spectator.left_reason not in (*RECONNECTABLE, *ended):
        refusals = {Spectator.LeftReason.BANNED: Refusal.BANNED, Spectator.LeftReason.SUSPENDED: Refusal.TIMED_OUT}
        raise AccessRefused(refusals.get(spectator.left_reason, Refusal.DENIED))
    visitor = Visitor(user=spectator.user, anon_key=spectator.anon_key)
    # The ticket vouches for the password and the approval it was issued after (an invite link
    # into an invite-only room left an invitation behind).
    facts = replace(access.join_facts(room, visitor), password=access.PasswordCheck.RIGHT, approval_expired=False)
    if facts.require_approval and facts.request_status is None:
        # Admitted before approval was switched on, or approved since: the ticket stands.
        facts = replace(facts, request_status=JoinRequest.Status.APPROVED)
    decision = access.decide_join(facts)
    if decision.verdict == Verdict.REFUSE:
        raise AccessRefused(decision.refusal)
    if decision.verdict != Verdict.ADMIT:
        raise AccessRefused(Refusal.DENIED)
    present = access.current_spectator(room, visitor)
    if present is not None:
        Spectator.objects.filter(pk=present.pk).update(last_seen_at=timezone.now())
        return present
    spectator = Spectator.objects.create(
        room=room, user=spectator.user, anon_key=spectator.anon_key, display_name=spectator.display_name
    )
    events.publish_spectator_list_after_commit(room)
    return spectator


def spectators_touch(*, spectator_ids) -> int:
    """Mark spectators with a live connection as seen now (the presence heartbeat)."""
    if not spectator_ids:
        return 0
    present = Spectator.objects.filter(pk__in=list(spectator_ids), left_at__isnull=True)
    return present.update(last_seen_at=timezone.now())


def spectators_expire_stale(*, now=None) -> int:
    """Free the seats of spectators unseen for ``SPECTATOR_PRESENCE_TIMEOUT`` (vanished browsers,
    dead processes, joins that never connected). Return how many."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.SPECTATOR_PRESENCE_TIMEOUT)
    freed = 0
    stale = Spectator.objects.select_related("room").filter(left_at__isnull=True, last_seen_at__lt=cutoff)
    for spectator in stale:
        with transaction.atomic():
            if Spectator.objects.filter(pk=spectator.pk, left_at__isnull=True, last_seen_at__lt=cutoff).update(
                left_at=now, left_reason=Spectator.LeftReason.TIMEOUT
            ):
                freed += 1
                events.publish_spectator_list_after_commit(spectator.room)
    return freed
