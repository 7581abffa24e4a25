"""The single authority on who may view, join, manage and approve in a room, and who may ingest.

``decide_join`` is a pure function of ``JoinFacts``; ``join_facts`` reads those facts from the
database. HTTP views, WebSocket consumers, the admin and the pages all ask here.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.utils import timezone

from metrics.models import TrainingSession
from rooms.codes import room_code_normalize
from rooms.models import AccessLevel, Ban, Invitation, JoinRequest, Room, RoomModerator, Spectator
from rooms.passwords import room_password_matches


class Refusal(enum.StrEnum):
    """Why a join is refused; the value is the error code clients see."""

    NOT_FOUND = "room_not_found"
    CLOSED = "room_closed"
    EXPIRED = "room_expired"
    BANNED = "banned"
    TIMED_OUT = "timed_out"
    LINK_INVALID = "invite_link_invalid"
    LINK_NOT_YOURS = "invite_link_not_yours"
    LOCKED = "room_locked"
    PASSWORD_REQUIRED = "password_required"
    WRONG_PASSWORD = "wrong_password"
    SIGN_IN_REQUIRED = "sign_in_required"
    NOT_INVITED = "not_invited"
    DENIED = "join_denied"
    FULL = "room_full"


REFUSAL_MESSAGES = {
    Refusal.NOT_FOUND: "No room with that code.",
    Refusal.CLOSED: "This room has been closed.",
    Refusal.EXPIRED: "This room has expired.",
    Refusal.BANNED: "You are banned from this room.",
    Refusal.TIMED_OUT: "You are timed out of this room for now; try again later.",
    Refusal.LINK_INVALID: "This invite link has expired or was revoked.",
    Refusal.LINK_NOT_YOURS: "This invite link is for someone else.",
    Refusal.LOCKED: "This room is locked: nobody new can join right now.",
    Refusal.PASSWORD_REQUIRED: "This room needs a password.",
    Refusal.WRONG_PASSWORD: "Wrong password.",
    Refusal.SIGN_IN_REQUIRED: "Sign in to join this invite-only room.",
    Refusal.NOT_INVITED: "This room is invite-only and you have not been invited.",
    Refusal.DENIED: "The room owner denied your request to join.",
    Refusal.FULL: "This room is full.",
}


class AccessRefused(Exception):
    """A join or view was refused; ``refusal`` says why."""

    def __init__(self, refusal: Refusal, message: str | None = None):
        self.refusal = refusal
        super().__init__(message or REFUSAL_MESSAGES[refusal])


class RoomNotFound(AccessRefused):
    def __init__(self):
        super().__init__(Refusal.NOT_FOUND)


class Verdict(enum.StrEnum):
    ADMIT = "admit"
    # Approval is required and this visitor has no request yet: the service creates one.
    REQUEST_APPROVAL = "request_approval"
    PENDING = "pending"
    REFUSE = "refuse"


class PasswordCheck(enum.StrEnum):
    NOT_CHECKED = "not_checked"
    MISSING = "missing"
    WRONG = "wrong"
    RIGHT = "right"


class LinkGrant(enum.StrEnum):
    """What an invite link the visitor came with grants (``rooms.invite_links``)."""

    NONE = "none"  # no link
    INVALID = "invalid"  # expired, revoked, forged or for another room
    NOT_YOURS = "not_yours"  # a link for another named user
    ENTRY = "entry"  # counts as an invitation
    ENTRY_WITH_PASSWORD = "entry_with_password"  # and vouches for the password


@dataclass(frozen=True)
class JoinFacts:
    """Everything the join decision depends on, read at one moment."""

    access_level: str
    status: str
    expired: bool
    require_approval: bool
    max_spectators: int
    seats_taken: int
    signed_in: bool
    is_manager: bool
    is_allowed: bool
    is_banned: bool
    already_present: bool
    request_status: str | None
    password: PasswordCheck = PasswordCheck.NOT_CHECKED
    locked: bool = False
    is_timed_out: bool = False
    # The approved request is older than the room's approval_ttl: the visitor asks again.
    approval_expired: bool = False
    link: LinkGrant = LinkGrant.NONE


@dataclass(frozen=True)
class JoinDecision:
    verdict: Verdict
    refusal: Refusal | None = None

    @classmethod
    def refuse(cls, refusal: Refusal) -> JoinDecision:
        return cls(Verdict.REFUSE, refusal)


def effective_request_status(facts: JoinFacts) -> str | None:
    """The request status that counts: an expired approval counts as no request at all."""
    if facts.request_status == JoinRequest.Status.APPROVED and facts.approval_expired:
        return None
    return facts.request_status


def needs_password(facts: JoinFacts) -> bool:
    """Whether the decision for these facts depends on the password the visitor typed."""
    return (
        facts.access_level == AccessLevel.PASSWORD
        and not facts.is_manager
        and not facts.is_allowed
        and not facts.already_present
        and facts.link != LinkGrant.ENTRY_WITH_PASSWORD
        and effective_request_status(facts) not in (JoinRequest.Status.PENDING, JoinRequest.Status.APPROVED)
    )


def decide_join(facts: JoinFacts) -> JoinDecision:
    """Decide a join from ``facts`` (DESIGN.md section 2), checks in a fixed order.

    Private rooms look missing to anyone not allowed in. Closed and expired rooms refuse
    everyone. The creator, room moderators and staff are always admitted, never wait and
    never count against the seat limit. Then bans, timeouts, a bad invite link and a lock
    (which spares those already present). Invited users skip the password and approval; a
    valid invite link counts as an invitation for invite-only rooms and may vouch for the
    password, but its holder still waits for approval. A visitor who already holds a seat,
    or whose request was approved (and the approval has not expired), is not asked again.
    """
    if facts.access_level == AccessLevel.PRIVATE and not (facts.is_manager or facts.is_allowed):
        return JoinDecision.refuse(Refusal.NOT_FOUND)
    if facts.status == Room.Status.CLOSED:
        return JoinDecision.refuse(Refusal.CLOSED)
    if facts.expired or facts.status == Room.Status.EXPIRED:
        return JoinDecision.refuse(Refusal.EXPIRED)
    if facts.is_manager:
        return JoinDecision(Verdict.ADMIT)
    if facts.is_banned:
        return JoinDecision.refuse(Refusal.BANNED)
    if facts.is_timed_out:
        return JoinDecision.refuse(Refusal.TIMED_OUT)
    if facts.link == LinkGrant.INVALID:
        return JoinDecision.refuse(Refusal.LINK_INVALID)
    if facts.link == LinkGrant.NOT_YOURS:
        return JoinDecision.refuse(Refusal.LINK_NOT_YOURS)
    if facts.locked and not facts.already_present:
        return JoinDecision.refuse(Refusal.LOCKED)
    if facts.access_level == AccessLevel.INVITE_ONLY:
        if not facts.signed_in:
            return JoinDecision.refuse(Refusal.SIGN_IN_REQUIRED)
        if not facts.is_allowed and facts.link == LinkGrant.NONE:
            return JoinDecision.refuse(Refusal.NOT_INVITED)
    if needs_password(facts):
        if facts.password in (PasswordCheck.MISSING, PasswordCheck.NOT_CHECKED):
            return JoinDecision.refuse(Refusal.PASSWORD_REQUIRED)
        if facts.password == PasswordCheck.WRONG:
            return JoinDecision.refuse(Refusal.WRONG_PASSWORD)
    request_status = effective_request_status(facts)
    if facts.require_approval and not facts.is_allowed and not facts.already_present:
        if request_status == JoinRequest.Status.DENIED:
            return JoinDecision.refuse(Refusal.DENIED)
        if request_status == JoinRequest.Status.PENDING:
            return JoinDecision(Verdict.PENDING)
        if request_status != JoinRequest.Status.APPROVED:
            return JoinDecision(Verdict.REQUEST_APPROVAL)
    if not facts.already_present and facts.seats_taken >= facts.max_spectators:
        return JoinDecision.refuse(Refusal.FULL)
    return JoinDecision(Verdict.ADMIT)


# --- Identity ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Visitor:
    """Who is asking: a signed-in user, or an anonymous browser known by a hashed key."""

    user: object = None
    anon_key: str = ""

    @property
    def signed_in(self) -> bool:
        return self.user is not None and getattr(self.user, "is_authenticated", False)


def _identity_q(visitor: Visitor) -> Q | None:
    if visitor.signed_in:
        return Q(user=visitor.user)
    if visitor.anon_key:
        return Q(user__isnull=True, anon_key=visitor.anon_key)
    return None


# --- Predicates ----------------------------------------------------------------------------


def can_own_room(user, room: Room) -> bool:
    """The creator, the training session's owner and staff own a room: they alone close it."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    return user.is_staff or user.pk in (room.creator_id, room.training_session.owner_id)


def is_room_moderator(user, room: Room) -> bool:
    """Named a moderator of the room (``RoomModerator``)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    return RoomModerator.objects.filter(room=room, user=user).exists()


def can_manage_room(user, room: Room) -> bool:
    """The room's owners (``can_own_room``) and its moderators manage a room.

    Managing is approving, inviting, kicking, timing out, banning, locking, changing access
    and naming moderators; closing the room is for its owners only.
    """
    return can_own_room(user, room) or is_room_moderator(user, room)


def is_allowed_in_room(user, room: Room) -> bool:
    """Named in ``allowed_users`` or holding an unrevoked invitation."""
    if user is None or not user.is_authenticated:
        return False
    if room.allowed_users.filter(pk=user.pk).exists():
        return True
    return Invitation.objects.filter(room=room, user=user, revoked_at__isnull=True).exists()


def bans_in_force(visitor: Visitor, room: Room, *, now=None):
    """Unlifted bans and running timeouts that bar ``visitor`` from ``room``: the room's own
    and the owner-wide ones of any room with the same creator."""
    identity = _identity_q(visitor)
    if identity is None:
        return Ban.objects.none()
    reach = Q(room=room) | Q(scope=Ban.Scope.OWNER, room__creator_id=room.creator_id)
    running = Q(expires_at__isnull=True) | Q(expires_at__gt=now or timezone.now())
    return Ban.objects.filter(identity, reach, running, lifted_at__isnull=True)


def approval_expired(room: Room, join_request: JoinRequest | None, *, now=None) -> bool:
    """An approval older than the room's ``approval_ttl`` no longer counts."""
    return bool(
        join_request is not None
        and join_request.status == JoinRequest.Status.APPROVED
        and room.approval_ttl > 0
        and join_request.decided_at is not None
        and join_request.decided_at + timedelta(seconds=room.approval_ttl) <= (now or timezone.now())
    )


def is_listed(room: Room) -> bool:
    """Shown on the lobby: live public or password rooms not marked unlisted."""
    return room.listed and room.access_level in (AccessLevel.PUBLIC, AccessLevel.PASSWORD) and room.is_live()


def can_see_room(user, room: Room) -> bool:
    """Anyone may know a non-private room exists; private rooms only to managers and allowed users."""
    if room.access_level != AccessLevel.PRIVATE:
        return True
    return can_manage_room(user, room) or is_allowed_in_room(user, room)


def can_manage_training_session(user, training_session: TrainingSession) -> bool:
    """Owners and staff manage a training session and create rooms for it."""
    return bool(
        user is not None
        and user.is_authenticated
        and user.is_active
        and (user.is_staff or user.pk == training_session.owner_id)
    )


def can_ingest(user, training_session: TrainingSession) -> bool:
    """Only the owner (or staff) streams metrics into a training session, and only while it is open."""
    return can_manage_training_session(user, training_session) and training_session.is_open


def can_act_as(user, other_username: str | None) -> bool:
    """A request that names someone else as creator, approver or closer needs staff."""
    if not other_username:
        return True
    return bool(user is not None and user.is_authenticated and (user.is_staff or user.get_username() == other_username))


# --- Facts and fetchers ------------------------------------------------------------------


def password_check(room: Room, password: str | None) -> PasswordCheck:
    if not password:
        return PasswordCheck.MISSING
    return PasswordCheck.RIGHT if room_password_matches(password, room.password_hash) else PasswordCheck.WRONG


def latest_join_request(room: Room, visitor: Visitor) -> JoinRequest | None:
    identity = _identity_q(visitor)
    if identity is None:
        return None
    return (
        JoinRequest.objects.filter(identity, room=room)
        .exclude(status=JoinRequest.Status.EXPIRED)
        .order_by("-created_at")
        .first()
    )


def current_spectator(room: Room, visitor: Visitor) -> Spectator | None:
    identity = _identity_q(visitor)
    if identity is None:
        return None
    return Spectator.objects.filter(identity, room=room, left_at__isnull=True).first()


def seats_taken(room: Room) -> int:
    """Seats held against ``max_spectators``: present spectators other than the room's managers."""
    return (
        Spectator.objects.filter(room=room, left_at__isnull=True)
        .exclude(user_id__in=[room.creator_id, room.training_session.owner_id])
        .exclude(user__is_staff=True)
        .exclude(user_id__in=RoomModerator.objects.filter(room=room).values("user_id"))
        .count()
    )


def join_facts(room: Room, visitor: Visitor, *, now=None, link: LinkGrant = LinkGrant.NONE) -> JoinFacts:
    """Read the facts the join decision needs, all but the password (see ``password_check``)
    and the invite link (``rooms.invite_links.invite_link_grant``), passed in as ``link``."""
    now = now or timezone.now()
    user = visitor.user if visitor.signed_in else None
    join_request = latest_join_request(room, visitor)
    # One query for both: a ban has no end, a timeout has one.
    barred_until = list(bans_in_force(visitor, room, now=now).values_list("expires_at", flat=True))
    return JoinFacts(
        access_level=room.access_level,
        status=room.status,
        expired=room.is_expired(now),
        require_approval=room.require_approval,
        max_spectators=room.max_spectators,
        seats_taken=seats_taken(room),
        signed_in=visitor.signed_in,
        is_manager=can_manage_room(user, room),
        is_allowed=is_allowed_in_room(user, room),
        is_banned=any(until is None for until in barred_until),
        already_present=current_spectator(room, visitor) is not None,
        request_status=join_request.status if join_request else None,
        locked=room.locked,
        is_timed_out=any(until is not None for until in barred_until),
        approval_expired=approval_expired(room, join_request, now=now),
        link=link,
    )


def room_lookup_q(ref: str) -> Q:
    """Match a room by its id (UUID) or by its code, case-insensitively."""
    ref = (ref or "").strip()
    try:
        return Q(pk=uuid.UUID(ref))
    except ValueError:
        return Q(code=room_code_normalize(ref))


def room_get_visible(ref: str, user) -> Room:
    """Return the room ``ref`` names if ``user`` may know it exists.

    A code names its live room, or else its most recent one. Raises ``RoomNotFound`` for a
    missing room and for a private room the user is not allowed to see.
    """
    from rooms.selectors import room_get_by_ref

    room = room_get_by_ref(ref)
    if room is None or not can_see_room(user, room):
        raise RoomNotFound()
    return room


def room_get_managed(ref: str, user) -> Room:
    """Return the room ``ref`` names if ``user`` manages it.

    Raises ``RoomNotFound`` where the room's existence must not leak, ``PermissionDenied``
    where the user can see the room but not manage it.
    """
    room = room_get_visible(ref, user)
    if not can_manage_room(user, room):
        raise PermissionDenied("Only the room's creator or a moderator can do this.")
    return room


def training_session_get_managed(training_session_id: str, user) -> TrainingSession:
    """Return the training session if ``user`` manages it; otherwise raise ``TrainingSession.DoesNotExist``.

    Sessions of other users look missing, so ids cannot be probed.
    """
    training_session = TrainingSession.objects.select_related("owner").get(pk=training_session_id)
    if not can_manage_training_session(user, training_session):
        raise TrainingSession.DoesNotExist
    return training_session


def can_view_training_session(visitor: Visitor, training_session: TrainingSession) -> bool:
    """Owners and staff, and anyone admitted to (present in) one of its live rooms."""
    user = visitor.user if visitor.signed_in else None
    if can_manage_training_session(user, training_session):
        return True
    identity = _identity_q(visitor)
    if identity is None:
        return False
    return Spectator.objects.filter(
        identity,
        left_at__isnull=True,
        room__training_session=training_session,
        room__status__in=Room.LIVE_STATUSES,
    ).exists()


def training_session_get_viewable(training_session_id: str, visitor: Visitor) -> TrainingSession:
    """Return the training session if ``visitor`` may read it; otherwise raise ``TrainingSession.DoesNotExist``.

    Sessions the visitor may not read look missing, so ids cannot be probed.
    """
    training_session = TrainingSession.objects.select_related("owner").filter(pk=training_session_id).first()
    if training_session is None or not can_view_training_session(visitor, training_session):
        raise TrainingSession.DoesNotExist
    return training_session


def training_session_list_viewable(visitor: Visitor, *, limit: int = 100) -> list[TrainingSession]:
    """The sessions ``visitor`` may read, to pick from: their own, newest first, then those of
    the live rooms they are watching (``can_view_training_session`` agrees with each)."""
    user = visitor.user if visitor.signed_in else None
    sessions = []
    readable = TrainingSession.objects.select_related("owner").order_by("-created_at")
    if user is not None and user.is_active:
        sessions = list(readable.filter(owner=user)[:limit])
    identity = _identity_q(visitor)
    if identity is not None:
        watched = Spectator.objects.filter(identity, left_at__isnull=True, room__status__in=Room.LIVE_STATUSES)
        mine = [session.pk for session in sessions]
        sessions += readable.filter(pk__in=watched.values("room__training_session")).exclude(pk__in=mine)[:limit]
    return sessions[:limit]


def join_preview(room: Room, visitor: Visitor, *, link: LinkGrant = LinkGrant.NONE) -> JoinDecision:
    """What joining ``room`` would decide for ``visitor`` now, before any password is typed.

    Pages use it to open on the right screen (password prompt, approval request, refusal);
    it writes nothing, so the join itself (``services.room_join``) still decides.
    """
    return decide_join(join_facts(room, visitor, link=link))
