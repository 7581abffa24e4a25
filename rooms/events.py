"""Room events: group names, one builder per event type, and publishing after commit.

A builder returns the message as it goes on the wire; ``publish`` serializes it once and
hands it to the channel layer's room group, where each server process's room hub (one
membership per process) writes the same text to every local spectator.
"""

from __future__ import annotations

import json
import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from spectator_site.observability import channel_layer_publish_failed

logger = logging.getLogger(__name__)


def room_group_name(room_id) -> str:
    """The channel-layer group of a room, built from its id only."""
    return f"room.{str(room_id).replace('-', '')}"


# --- Builders ------------------------------------------------------------------------------


def spectator_entry(spectator) -> dict:
    return {
        "spectator_id": spectator.pk,
        "display_name": spectator.display_name,
        "username": spectator.user.get_username() if spectator.user_id else None,
        "joined_at": spectator.joined_at.isoformat() if spectator.joined_at else None,
    }


SPECTATOR_LIST_LIMIT = 100


def spectator_list(room_id) -> dict:
    """Who is watching now: the count and the first ``SPECTATOR_LIST_LIMIT`` entries."""
    from rooms.models import Spectator

    present = Spectator.objects.select_related("user").filter(room_id=room_id, left_at__isnull=True)
    return {
        "type": "spectator_list",
        "count": present.count(),
        "spectators": [spectator_entry(s) for s in present.order_by("joined_at")[:SPECTATOR_LIST_LIMIT]],
    }


def spectator_removed(spectator) -> dict:
    """Tells the removed spectator's own connections why they close (kick or ban)."""
    return {"type": "room_closed", "reason": spectator.left_reason, "spectator_id": spectator.pk}


def sent_to_waiting(join_request, spectator_id=None, place=None) -> dict:
    """Tells a spectator sent back to the waiting room where they stand and what the owner says."""
    return {
        "type": "waiting",
        "spectator_id": spectator_id,
        "request_id": join_request.pk,
        "place": place,
        "message": join_request.room.waiting_message,
    }


def room_closed(room) -> dict:
    return {"type": "room_closed", "room_code": room.code, "reason": room.status}


def join_request_entry(join_request) -> dict:
    return {
        "request_id": join_request.pk,
        "display_name": join_request.display_name,
        "username": join_request.user.get_username() if join_request.user_id else None,
        "message": join_request.message,
        "status": join_request.status,
        "created_at": join_request.created_at.isoformat() if join_request.created_at else None,
    }


def join_request_created(join_request) -> dict:
    return {"type": "join_request", "request": join_request_entry(join_request)}


def join_request_decided(join_request) -> dict:
    return {"type": "join_request_decided", "request": join_request_entry(join_request)}


# --- Publishing -----------------------------------------------------------------------------

# Who a room event is for: everyone, the room's managers, or one spectator's connections.
AUDIENCE_ALL = "all"
AUDIENCE_MANAGERS = "managers"
AUDIENCE_SPECTATOR = "spectator"
MANAGER_ONLY_TYPES = {"join_request", "join_request_decided"}


def room_event(
    room_id, message: dict, *, audience: str = AUDIENCE_ALL, spectator_id=None, close_code=None, latest_wins=False
) -> dict:
    """The channel-layer envelope of a room event: its text, serialized once, and its audience.

    ``latest_wins``: a newer event of the same type replaces this one if the hub has not sent
    it yet (the spectator list: when many join at once, each spectator gets the latest few
    lists rather than one per join).
    """
    return {
        "type": "room.event",
        "room_id": str(room_id),
        "text": json.dumps(message, separators=(",", ":")),
        "audience": audience,
        "spectator_id": spectator_id,
        "close_code": close_code,
        "latest_wins": latest_wins,
    }


def publish(room_id, message: dict, **envelope) -> None:
    """Send a room event to the room's group: each process's hub delivers it to its connections."""
    layer = get_channel_layer()
    if layer is None:
        return
    if message["type"] in MANAGER_ONLY_TYPES:
        envelope.setdefault("audience", AUDIENCE_MANAGERS)
    try:
        async_to_sync(layer.group_send)(room_group_name(room_id), room_event(room_id, message, **envelope))
    except Exception:
        # The write is committed; a broken channel layer must not turn it into an error.
        logger.exception("could not publish %s to room %s", message["type"], room_id)
        channel_layer_publish_failed()


def publish_after_commit(room, message: dict, **envelope) -> None:
    """Publish once the surrounding transaction commits; nothing goes out for a rollback."""
    room_id = room.pk
    transaction.on_commit(lambda: publish(room_id, message, **envelope))


def publish_spectator_list_after_commit(room) -> None:
    """After commit, read who is present and publish the list (built once, for every process)."""
    room_id = room.pk
    transaction.on_commit(lambda: publish(room_id, spectator_list(room_id), latest_wins=True))


CLOSE_REFUSED = 4403
CLOSE_GONE = 4410


def publish_removal_after_commit(spectator) -> None:
    """Close a kicked or banned spectator's connections, in whichever process holds them."""
    room_id = spectator.room_id
    message = spectator_removed(spectator)
    transaction.on_commit(
        lambda: publish(
            room_id, message, audience=AUDIENCE_SPECTATOR, spectator_id=spectator.pk, close_code=CLOSE_REFUSED
        )
    )


CLOSE_WAITING = 4202


def publish_sent_to_waiting_after_commit(spectator, join_request, *, place) -> None:
    """Tell a spectator sent back to the waiting room, then close their connections (4202)."""
    room_id = spectator.room_id
    message = sent_to_waiting(join_request, spectator_id=spectator.pk, place=place)
    transaction.on_commit(
        lambda: publish(
            room_id, message, audience=AUDIENCE_SPECTATOR, spectator_id=spectator.pk, close_code=CLOSE_WAITING
        )
    )
