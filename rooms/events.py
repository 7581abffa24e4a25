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

logger = logging.getLogger(__name__)


def room_group_name(room_id) -> str:
    """The channel-layer group of a room, built from its id only."""
    return f"room.{str(room_id).replace('-', '')}"


def owners_group_name(room_id) -> str:
    """The group of a room's managers' connections (join requests go there only)."""
    return f"room-owners.{str(room_id).replace('-', '')}"


# --- Builders ------------------------------------------------------------------------------


def spectator_entry(spectator) -> dict:
    return {
        "spectator_id": spectator.pk,
        "display_name": spectator.display_name,
        "username": spectator.user.get_username() if spectator.user_id else None,
        "joined_at": spectator.joined_at.isoformat() if spectator.joined_at else None,
    }


def spectator_joined(spectator) -> dict:
    return {"type": "spectator_joined", "spectator": spectator_entry(spectator)}


def spectator_left(spectator) -> dict:
    return {"type": "spectator_left", "spectator": spectator_entry(spectator), "reason": spectator.left_reason}


def spectator_removed(spectator) -> dict:
    """Tells the removed spectator's own connections to close (kick or ban)."""
    return {
        "type": "spectator_removed",
        "spectator_id": spectator.pk,
        "reason": spectator.left_reason,
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

OWNER_ONLY_TYPES = {"join_request", "join_request_decided"}


def publish(room_id, message: dict) -> None:
    """Serialize ``message`` once and send it to the room's group (owners' group for requests)."""
    layer = get_channel_layer()
    if layer is None:
        return
    group = owners_group_name(room_id) if message["type"] in OWNER_ONLY_TYPES else room_group_name(room_id)
    text = json.dumps(message, separators=(",", ":"))
    try:
        async_to_sync(layer.group_send)(group, {"type": "room.event", "event": message["type"], "text": text})
    except Exception:
        # The write is committed; a broken channel layer must not turn it into an error.
        logger.exception("could not publish %s to %s", message["type"], group)


def publish_after_commit(room, message: dict) -> None:
    """Publish once the surrounding transaction commits; nothing goes out for a rollback."""
    room_id = room.pk
    transaction.on_commit(lambda: publish(room_id, message))
