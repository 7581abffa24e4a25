"""Moderation over the room socket: admit all, send back to the waiting room (a ``waiting``
message, then close 4202), timeouts (close 4403, reconnects refused until the time passes)."""

import pytest
from channels.db import database_sync_to_async

from rooms.access import Visitor
from rooms.models import AuditEntry, Ban, JoinRequest, Spectator
from rooms.services import room_access_update, room_join
from tests.rooms import test_consumers as base
from tests.support.live import expect_closed, expect_refused, receive_type, room_path, ws_open

pytestmark = pytest.mark.django_db(transaction=True)
db = database_sync_to_async
# The room socket tests' fixtures and helpers.
_closes_thread_connections, room, seat = base._closes_thread_connections, base.room, base.seat
assert_usable, close_all, watch, watch_as = base.assert_usable, base.close_all, base.watch, base.watch_as


async def test_admit_all_over_the_socket(make_room, make_user, owner):
    gated = await db(make_room)(require_approval=True)
    waiting = [await db(make_user)(f"w{n}") for n in range(2)]
    for user in waiting:
        assert (await db(room_join)(room=gated, visitor=Visitor(user=user))).status == "pending_approval"
    manager, _ = await watch_as(gated, owner)
    await manager.send_json_to({"type": "admit_all"})
    for _ in waiting:
        decided = await receive_type(manager, "join_request_decided", skip=("spectator_list", "join_request"))
        assert decided["request"]["status"] == "approved"
    assert await db(JoinRequest.objects.filter(room=gated, status="approved").count)() == 2
    assert await db(AuditEntry.objects.filter(room=gated, action="admit_all").exists)()
    await close_all(manager)


async def test_send_to_waiting_over_the_socket_tells_the_spectator_and_closes_4202(make_room, make_user, owner, seat):
    gated = await db(make_room)()
    ann = await db(seat)(gated, "ann")
    await db(room_access_update)(room=gated, actor=owner, require_approval=True, waiting_message="One moment")
    target, _ = await watch(gated, ann)
    manager, _ = await watch_as(gated, owner)
    await manager.send_json_to({"type": "send_to_waiting", "spectator_id": ann.spectator.pk})
    waiting = await receive_type(target, "waiting", skip=("spectator_list",))
    assert waiting["spectator_id"] == ann.spectator.pk and waiting["place"] == 1
    assert waiting["message"] == "One moment"
    await expect_closed(target, 4202)
    spectator = await db(Spectator.objects.get)(pk=ann.spectator.pk)
    assert spectator.left_reason == Spectator.LeftReason.WAITING
    request = await receive_type(manager, "join_request", skip=("spectator_list",))
    assert request["request"]["username"] == "ann" and request["request"]["status"] == "pending"
    await assert_usable(manager)
    await close_all(target, manager)


async def test_send_to_waiting_refuses_without_approval(room, seat, owner):
    ann = await db(seat)(room, "ann")
    target, _ = await watch(room, ann)
    manager, _ = await watch_as(room, owner)
    await manager.send_json_to({"type": "send_to_waiting", "spectator_id": ann.spectator.pk})
    error = await receive_type(manager, "error", skip=("spectator_list",))
    assert "approval" in error["message"]
    await close_all(target, manager)


async def test_timeout_over_the_socket_closes_and_refuses_the_ticket(room, seat, owner):
    ann = await db(seat)(room, "ann")
    target, _ = await watch(room, ann)
    manager, _ = await watch_as(room, owner)
    await manager.send_json_to({"type": "timeout", "spectator_id": ann.spectator.pk, "duration_seconds": 600})
    assert (await receive_type(target, "room_closed", skip=("spectator_list",)))["reason"] == "suspended"
    await expect_closed(target, 4403)
    assert await db(Ban.objects.filter(room=room, user__username="ann", expires_at__isnull=False).exists)()
    refused = await ws_open(room_path(room.code, ann.ticket))
    await expect_refused(refused, "timed_out", 4403)
    await close_all(manager)


async def test_timeout_over_the_socket_needs_a_duration(room, seat, owner):
    ann = await db(seat)(room, "ann")
    manager, _ = await watch_as(room, owner)
    await manager.send_json_to({"type": "timeout", "spectator_id": ann.spectator.pk})
    error = await receive_type(manager, "error", skip=("spectator_list",))
    assert error["field"] == "duration_seconds"
    await close_all(manager)
