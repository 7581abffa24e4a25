"""The audit trail: one ``AuditEntry`` per access or moderation action, written by the service
that acts, in its transaction (a rolled-back action leaves no entry)."""

from __future__ import annotations

import ipaddress

from rooms.models import AuditEntry, Room

Action = AuditEntry.Action


def _clean_ip(ip: str | None) -> str | None:
    try:
        return str(ipaddress.ip_address((ip or "").strip()))
    except ValueError:
        return None


def _name(user) -> str:
    return user.get_username() if user is not None and getattr(user, "is_authenticated", False) else ""


def audit_record(
    *,
    action: str,
    room: Room,
    actor=None,
    actor_name: str = "",
    target_user=None,
    target_name: str = "",
    ip: str | None = None,
    details: dict | None = None,
) -> AuditEntry:
    """Record ``action`` in ``room`` by ``actor`` on a user or a display name.

    Without a signed-in ``actor`` the entry names ``actor_name`` (an anonymous visitor's display
    name), else ``system`` (the sweep's auto-approvals).
    """
    actor = actor if _name(actor) else None
    target_user = target_user if _name(target_user) else None
    return AuditEntry.objects.create(
        room=room,
        room_code=room.code,
        owner_id=room.creator_id,
        action=action,
        actor=actor,
        actor_name=(_name(actor) or actor_name or "system")[:150],
        target_user=target_user,
        target_name=(target_name or _name(target_user))[:150],
        ip=_clean_ip(ip),
        details=details or {},
    )
