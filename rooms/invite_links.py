"""Invite links: a signed token naming a link and carrying its random secret.

Only a SHA-256 of the secret is stored; a token is checked by its signature, then by comparing
hashes in constant time, then by the link's room, expiry, revocation and named user.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from rooms import audit
from rooms.access import LinkGrant, Visitor
from rooms.models import AccessLevel, Invitation, InviteLink, Room

SALT = "rooms.invite_link"
SECRET_BYTES = 24
MAX_HOURS = 24 * 30


def _secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def invite_link_token(link: InviteLink, secret: str) -> str:
    return signing.dumps({"l": link.pk, "s": secret}, salt=SALT)


def invite_link_read(token: str) -> InviteLink | None:
    """The link a token names if its signature and secret are right (usable or not), else None."""
    try:
        payload = signing.loads(token or "", salt=SALT)
        link_id, secret = int(payload["l"]), str(payload["s"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return None
    link = InviteLink.objects.filter(pk=link_id).first()
    if link is None or not hmac.compare_digest(_secret_hash(secret), link.secret_hash):
        return None
    return link


def invite_link_grant(
    room: Room, visitor: Visitor, token: str | None, *, now=None
) -> tuple[LinkGrant, InviteLink | None]:
    """What ``token`` grants ``visitor`` in ``room`` (``LinkGrant.NONE`` without a token)."""
    if not token:
        return LinkGrant.NONE, None
    link = invite_link_read(token)
    if link is None or link.room_id != room.pk or not link.is_usable(now):
        return LinkGrant.INVALID, None
    if link.user_id is not None and not (visitor.signed_in and visitor.user.pk == link.user_id):
        return LinkGrant.NOT_YOURS, link
    if link.grants_password and room.access_level == AccessLevel.PASSWORD:
        return LinkGrant.ENTRY_WITH_PASSWORD, link
    return LinkGrant.ENTRY, link


@transaction.atomic
def invite_link_create(
    *,
    room: Room,
    actor,
    username: str | None = None,
    grants_password: bool = False,
    expires_in_hours: float = 24,
    label: str = "",
    ip: str | None = None,
) -> tuple[InviteLink, str]:
    """Create an invite link; return it and its token, shown once.

    Raises ``PermissionDenied`` unless ``actor`` manages the room, ``ValidationError`` naming
    the field for a private or ended room, an unknown user or a bad expiry.
    """
    from rooms.services import require_manager

    require_manager(actor, room)
    if not room.is_live():
        raise ValidationError({"room": "This room is no longer live."})
    if room.access_level == AccessLevel.PRIVATE:
        raise ValidationError({"access_level": "Private rooms admit only their allowed users; invite them instead."})
    if not (0 < expires_in_hours <= MAX_HOURS):
        raise ValidationError({"expires_in_hours": f"Must be more than 0 and at most {MAX_HOURS}."})
    user = None
    if username:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise ValidationError({"username": "Unknown user."})
    secret = secrets.token_urlsafe(SECRET_BYTES)
    link = InviteLink(
        room=room,
        secret_hash=_secret_hash(secret),
        user=user,
        grants_password=grants_password and room.access_level == AccessLevel.PASSWORD,
        label=label[:100],
        created_by=actor,
        expires_at=timezone.now() + timedelta(hours=expires_in_hours),
    )
    link.full_clean()
    link.save()
    audit.audit_record(
        action=audit.Action.INVITE_LINK_CREATE,
        room=room,
        actor=actor,
        target_user=user,
        ip=ip,
        details={
            "link_id": link.pk,
            "grants_password": link.grants_password,
            "expires_at": link.expires_at.isoformat(),
        },
    )
    return link, invite_link_token(link, secret)


@transaction.atomic
def invite_link_revoke(*, link: InviteLink, actor, ip: str | None = None) -> InviteLink:
    """Revoke an invite link; who joined with it stays. Idempotent."""
    from rooms.services import require_manager

    require_manager(actor, link.room)
    if InviteLink.objects.filter(pk=link.pk, revoked_at__isnull=True).update(revoked_at=timezone.now()):
        audit.audit_record(
            action=audit.Action.INVITE_LINK_REVOKE,
            room=link.room,
            actor=actor,
            target_user=link.user,
            ip=ip,
            details={"link_id": link.pk},
        )
    link.refresh_from_db()
    return link


def invite_link_used(link: InviteLink, *, visitor: Visitor, display_name: str, ip: str | None = None) -> None:
    """Count a join through ``link`` and record it (inside the join's transaction).

    In an invite-only room the link's user is invited for good, so their reconnects (which
    carry a ticket, not the link) and later joins need no link.
    """
    InviteLink.objects.filter(pk=link.pk).update(uses=F("uses") + 1)
    if link.room.access_level == AccessLevel.INVITE_ONLY and visitor.signed_in:
        if not Invitation.objects.filter(room=link.room, user=visitor.user, revoked_at__isnull=True).exists():
            Invitation.objects.create(room=link.room, user=visitor.user, invited_by=link.created_by)
    audit.audit_record(
        action=audit.Action.INVITE_LINK_JOIN,
        room=link.room,
        actor=visitor.user if visitor.signed_in else None,
        actor_name=display_name,
        target_user=visitor.user if visitor.signed_in else None,
        target_name=display_name,
        ip=ip,
        details={"link_id": link.pk},
    )
