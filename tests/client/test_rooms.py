"""SpectatorRoomManager against a real server: every method of DESIGN.md section 3 and its errors."""

import json

import pytest

import spectator_client as sc
from spectator_client import AccessLevel, RoomAccessControl, SpectatorRoomManager
from tests.client.support import run


def rooms_for(server, user):
    return SpectatorRoomManager(server.url, server.tokens[user] if user else "")


def test_create_spectator_room_and_get_room_info(spectator_server, unique):
    training_id = unique()

    async def scenario():
        async with rooms_for(spectator_server, "alice") as alice, rooms_for(spectator_server, "bob") as bob:
            control = RoomAccessControl(
                AccessLevel.PASSWORD, password="open-sesame", max_spectators=3, allowed_users={"carol"}
            )
            room = await alice.create_spectator_room(training_id, access_control=control, room_duration_hours=1)
            await bob.join_room_request(room.room_code, user_name="Bobby", password="open-sesame")
            info = await alice.get_room_info(room.room_code)
            seen_by_bob = await bob.get_room_info(room.room_id)
            mine = await alice.list_user_rooms("alice")
            with pytest.raises(sc.ValidationError) as bad_code:
                await alice.create_spectator_room(training_id, custom_room_code="O0O0O0")
            with pytest.raises(sc.ValidationError) as unknown_user:
                await alice.create_spectator_room(
                    training_id, access_control=RoomAccessControl(allowed_users={"nobody-by-this-name"})
                )
            return room, info, seen_by_bob, mine, bad_code.value, unknown_user.value

    room, info, seen_by_bob, mine, bad_code, unknown_user = run(scenario())
    assert isinstance(room, sc.RoomInfo)
    assert room.room_password == "open-sesame" and room.creator_id == "alice" and room.room_status == "active"
    assert room.training_session_id == training_id and room.access_control.access_level is AccessLevel.PASSWORD
    assert room.access_control.allowed_users == {"carol"} and room.access_control.max_spectators == 3
    json.dumps(room.to_dict())
    assert info.current_spectators == 1 and [s["display_name"] for s in info.spectator_list] == ["Bobby"]
    assert info.room_password is None  # shown once, at creation
    assert seen_by_bob.access_control.allowed_users == set()  # only managers see who is allowed
    assert room.room_id in [r.room_id for r in mine]
    assert bad_code.field == "custom_room_code" and unknown_user.field == "access_control.allowed_users"


def test_custom_code_and_acting_for_others(spectator_server, unique):
    training_id = unique()

    async def scenario():
        async with rooms_for(spectator_server, "alice") as alice, rooms_for(spectator_server, "mod") as mod:
            await alice.create_spectator_room(training_id)
            with pytest.raises(sc.AccessDenied):
                await alice.create_spectator_room(training_id, creator_id="bob")
            staff_made = await mod.create_spectator_room(training_id, creator_id="alice")
            custom = await alice.create_spectator_room(training_id, custom_room_code=_code(unique))
            with pytest.raises(sc.ValidationError) as taken:
                await alice.create_spectator_room(training_id, custom_room_code=custom.room_code)
            return staff_made, custom, taken.value

    staff_made, custom, taken = run(scenario())
    assert staff_made.creator_id == "alice"
    assert taken.field == "custom_room_code"


def _code(unique) -> str:
    """A fresh valid custom room code (A-Z, 2-9, no O or I)."""
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    number = abs(hash(unique("code")))
    return "".join(alphabet[(number >> (5 * i)) % 32] for i in range(6))


def test_approval_flow(spectator_server, unique):
    training_id = unique()

    async def scenario():
        async with (
            rooms_for(spectator_server, "alice") as alice,
            rooms_for(spectator_server, "bob") as bob,
            rooms_for(spectator_server, "carol") as carol,
            rooms_for(spectator_server, None) as guest,
        ):
            room = await alice.create_spectator_room(
                training_id, access_control=RoomAccessControl(require_approval=True)
            )
            asked = await bob.join_room_request(room.room_code, user_metadata={"message": "let me in"})
            await carol.join_room_request(room.room_code)
            anonymous = await guest.join_room_request(room.room_code, user_name="Guest Gina")
            pending = await alice.get_pending_approvals(room.room_code)
            with pytest.raises(sc.AccessDenied):
                await bob.get_pending_approvals(room.room_code)
            with pytest.raises(sc.AccessDenied):
                await alice.approve_join_request(room.room_code, "bob", approver_id="mod")
            approved = await alice.approve_join_request(room.room_code, "bob", approver_id="alice")
            denied = await alice.approve_join_request(room.room_code, "carol", approved=False)
            gina = await alice.approve_join_request(room.room_code, "Guest Gina")
            with pytest.raises(sc.ValidationError) as nobody:
                await alice.approve_join_request(room.room_code, "dave")
            bob_again = await bob.join_room_request(room.room_code)
            gina_again = await guest.join_room_request(room.room_code)
            with pytest.raises(sc.AccessDenied) as carol_refused:
                await carol.join_room_request(room.room_code)
            return asked, anonymous, pending, approved, denied, gina, nobody.value, bob_again, gina_again, carol_refused

    asked, anonymous, pending, approved, denied, gina, nobody, bob_again, gina_again, carol_refused = run(scenario())
    assert asked["status"] == anonymous["status"] == "pending_approval" and anonymous["visitor_token"]
    assert [(r["username"], r["message"]) for r in pending][:2] == [("bob", "let me in"), ("carol", "")]
    assert approved["status"] == "approved" and approved["decided_by"] == "alice"
    assert denied["status"] == "denied" and gina["status"] == "approved"
    assert nobody.field == "user_id"
    assert bob_again["status"] == gina_again["status"] == "approved" and "websocket_url" in bob_again
    assert carol_refused.value.code == "join_denied"


def test_invite_only_and_private_rooms(spectator_server, unique):
    training_id = unique()

    async def scenario():
        async with (
            rooms_for(spectator_server, "alice") as alice,
            rooms_for(spectator_server, "bob") as bob,
            rooms_for(spectator_server, "dave") as dave,
            rooms_for(spectator_server, None) as guest,
        ):
            invite = await alice.create_spectator_room(
                training_id, access_control=RoomAccessControl(AccessLevel.INVITE_ONLY)
            )
            invitation = await alice.invite_user(invite.room_code, "bob")
            again = await alice.invite_user(invite.room_code, "bob")
            with pytest.raises(sc.AccessDenied):
                await bob.invite_user(invite.room_code, "dave")
            bob_joined = await bob.join_room_request(invite.room_code)
            with pytest.raises(sc.AccessDenied) as not_invited:
                await dave.join_room_request(invite.room_code)
            with pytest.raises(sc.AuthenticationRequired) as anonymous:
                await guest.join_room_request(invite.room_code)
            revoked = await alice.revoke_invitation(invite.room_code, "bob")

            private = await alice.create_spectator_room(
                training_id, access_control=RoomAccessControl(AccessLevel.PRIVATE, allowed_users={"bob"})
            )
            with pytest.raises(sc.RoomNotFound):
                await dave.get_room_info(private.room_code)
            with pytest.raises(sc.RoomNotFound):
                await dave.join_room_request(private.room_code)
            bob_private = await bob.join_room_request(private.room_code)
            public_codes = [room.room_code for room in await guest.list_public_rooms()]
            return (
                invitation,
                again,
                bob_joined,
                not_invited.value,
                anonymous.value,
                revoked,
                bob_private,
                public_codes,
                invite,
                private,
            )

    invitation, again, bob_joined, not_invited, anonymous, revoked, bob_private, public_codes, invite, private = run(
        scenario()
    )
    assert invitation["username"] == "bob" and again["invitation_id"] == invitation["invitation_id"]
    assert bob_joined["status"] == "approved" and not_invited.code == "not_invited"
    assert anonymous.code == "sign_in_required" and isinstance(anonymous, ValueError)
    assert revoked is True and bob_private["status"] == "approved"
    assert invite.room_code not in public_codes and private.room_code not in public_codes


def test_block_full_leave_close(spectator_server, unique):
    training_id = unique()

    async def scenario():
        async with (
            rooms_for(spectator_server, "alice") as alice,
            rooms_for(spectator_server, "bob") as bob,
            rooms_for(spectator_server, "carol") as carol,
            rooms_for(spectator_server, "dave") as dave,
            rooms_for(spectator_server, "mod") as mod,
        ):
            room = await alice.create_spectator_room(training_id, access_control=RoomAccessControl(max_spectators=1))
            code = room.room_code
            ban = await alice.block_user(code, "dave", reason="spoilers")
            with pytest.raises(sc.Banned) as banned:
                await dave.join_room_request(code)
            await bob.join_room_request(code)
            with pytest.raises(sc.RoomFull) as full:
                await carol.join_room_request(code)
            await bob.leave_room(code, "bob")
            await bob.leave_room(code)
            carol_in = await carol.join_room_request(code)
            spectators = await alice.list_spectators(code)
            kicked = await alice.block_user(code, spectators[0]["spectator_id"], reason="by id")
            lifted = await alice.unblock_user(code, "dave")
            dave_in = await dave.join_room_request(code)
            with pytest.raises(sc.AccessDenied):
                await bob.close_room(code)
            with pytest.raises(sc.AccessDenied):
                await alice.close_room(code, closer_id="mod")
            closed = await mod.close_room(code, closer_id="alice")
            with pytest.raises(sc.RoomClosed) as gone:
                await bob.join_room_request(code)
            listed = [r.room_code for r in await alice.list_user_rooms()]
            listed_all = [r.room_code for r in await alice.list_user_rooms(include_ended=True)]
            return (
                ban,
                banned.value,
                full.value,
                carol_in,
                kicked,
                lifted,
                dave_in,
                closed,
                gone.value,
                listed,
                listed_all,
            )

    ban, banned, full, carol_in, kicked, lifted, dave_in, closed, gone, listed, listed_all = run(scenario())
    assert ban["username"] == "dave" and ban["reason"] == "spoilers"
    assert banned.code == "banned" and isinstance(banned, sc.AccessDenied) and isinstance(banned, ValueError)
    assert full.code == "room_full" and isinstance(full, RuntimeError) and full.status == 409
    assert carol_in["status"] == "approved" and kicked["username"] == "carol"
    assert lifted is True and dave_in["status"] == "approved"
    assert closed.room_status == "closed"
    assert isinstance(gone, sc.RoomExpired) and gone.code == "room_closed"
    assert closed.room_code not in listed and closed.room_code in listed_all


def test_too_many_wrong_passwords_is_rate_limited(spectator_server, unique):
    training_id = unique()

    async def scenario():
        async with rooms_for(spectator_server, "alice") as alice, rooms_for(spectator_server, "erin") as erin:
            room = await alice.create_spectator_room(
                training_id, access_control=RoomAccessControl(AccessLevel.PASSWORD, password="right-one")
            )
            for _attempt in range(5):
                with pytest.raises(sc.InvalidPassword):
                    await erin.join_room_request(room.room_code, password="wrong-one")
            with pytest.raises(sc.RateLimited) as limited:
                await erin.join_room_request(room.room_code, password="right-one")
            return limited.value

    limited = run(scenario())
    assert limited.code == "locked_out" and limited.status == 429 and limited.retry_after > 0


def test_password_and_access_changes(spectator_server, unique):
    training_id = unique()

    async def scenario():
        async with rooms_for(spectator_server, "alice") as alice, rooms_for(spectator_server, "bob") as bob:
            room = await alice.create_spectator_room(
                training_id, access_control=RoomAccessControl(AccessLevel.PASSWORD)
            )
            generated = room.room_password
            fresh = await alice.regenerate_password(room.room_code)
            with pytest.raises(sc.InvalidPassword):
                await bob.join_room_request(room.room_code, password=generated)
            joined = await bob.join_room_request(room.room_code, password=fresh)
            opened = await alice.update_access_control(
                room.room_code, access_level=AccessLevel.PUBLIC, max_spectators=7
            )
            return generated, fresh, joined, opened

    generated, fresh, joined, opened = run(scenario())
    assert generated and fresh and generated != fresh and joined["status"] == "approved"
    assert opened.access_control.access_level is AccessLevel.PUBLIC and opened.access_control.max_spectators == 7
