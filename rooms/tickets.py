"""Signed, short-lived tickets that let a joined spectator open the room WebSocket."""

from dataclasses import dataclass

from django.conf import settings
from django.core import signing

_SALT = "rooms.ticket.v1"


@dataclass(frozen=True)
class Ticket:
    room_id: str
    spectator_id: int


class InvalidTicket(Exception):
    pass


def ticket_issue(*, room_id, spectator_id: int) -> str:
    return signing.dumps({"r": str(room_id), "s": spectator_id}, salt=_SALT, compress=True)


def ticket_read(raw: str, *, room_id, max_age: int | None = None) -> Ticket:
    """Return the ticket if it is genuine, fresh and for ``room_id``; else raise ``InvalidTicket``."""
    try:
        payload = signing.loads(
            raw, salt=_SALT, max_age=settings.SPECTATOR_TICKET_MAX_AGE if max_age is None else max_age
        )
    except signing.BadSignature as exc:
        raise InvalidTicket(str(exc)) from exc
    if payload.get("r") != str(room_id):
        raise InvalidTicket("Ticket is for another room.")
    return Ticket(room_id=payload["r"], spectator_id=int(payload["s"]))
