"""SpectatorRoomManager's moderation methods against a real server: the waiting room, locks and
listing, moderators, timeouts and scoped bans, invite links and the audit trail, with the
package's error types."""

import csv
import io

import pytest

import spectator_client as sc
from spectator_client import AccessLevel, RoomAccessControl, SpectatorRoomManager
from spectator_client.moderation import invite_link_parse
from tests.client.support import run


def rooms_for(server, user):
    return SpectatorRoomManager(server.url, server.tokens[user] if user else "")


def test_waiting_room_admit_all_send_back_and_approval_switch(spectator_server, unique):
    training_id = unique()

    async def scenario():
        async with (
            rooms_for(spectator_server, "alice") as alice,
            rooms_for(spectator_server, "bob") as bob,
            rooms_for(spectator_server, "carol") as carol,
        ):
            room = await alice.create_spectator_room(
                training_id, access_control=RoomAccessControl(require_approval=True)
            )
            await alice.set_approval(room.room_code, True, approval_ttl=3600, waiting_message="Soon")
            first = await bob.join_room_request(room.room_code)
            second = await carol.join_room_request(room.room_code)
            admitted = await alice.admit_all(room.room_code)
            bob_in = await bob.join_room_request(room.room_code)
            back = await alice.send_to_waiting_room(room.room_code, bob_in["spectator_id"])
            bob_waits = await bob.join_room_request(room.room_code)
            off = await alice.set_approval(room.room_code, False)
            bob_again = await bob.join_room_request(room.room_code)
            with pytest.raises(sc.ValidationError) as approval_off:
                await alice.send_to_waiting_room(room.room_code, bob_in["spectator_id"])
            with pytest.raises(sc.AccessDenied):
                await bob.admit_all(room.room_code)
            return first, second, admitted, back, bob_waits, off, bob_again, approval_off.value

    first, second, admitted, back, bob_waits, off, bob_again, approval_off = run(scenario())
    assert (first["status"], first["place"], first["waiting_message"]) == ("pending_approval", 1, "Soon")
    assert second["place"] == 2
    assert admitted == 2
    assert back["status"] == "pending" and bob_waits["status"] == "pending_approval"
    assert off.access_control.require_approval is False
    assert bob_again["status"] == "approved"  # turning approval off admitted everyone waiting
    assert approval_off.field == "require_approval"


def test_lock_listing_and_moderators(spectator_server, unique):
    training_id = unique()

    async def scenario():
        async with (
            rooms_for(spectator_server, "alice") as alice,
            rooms_for(spectator_server, "bob") as bob,
            rooms_for(spectator_server, "carol") as carol,
        ):
            room = await alice.create_spectator_room(training_id)
            locked = await alice.lock_room(room.room_code)
            with pytest.raises(sc.RoomLocked) as refused:
                await bob.join_room_request(room.room_code)
            unlocked = await alice.unlock_room(room.room_code)
            unlisted = await alice.set_listed(room.room_code, False)
            public = {r.room_code for r in await bob.list_public_rooms()}
            added = await alice.add_moderator(room.room_code, "carol")
            await carol.lock_room(room.room_code)
            with pytest.raises(sc.AccessDenied):
                await carol.close_room(room.room_code)
            moderators = await alice.list_moderators(room.room_code)
            removed = (
                await alice.remove_moderator(room.room_code, "carol"),
                await alice.remove_moderator(room.room_code, "carol"),
            )
            with pytest.raises(sc.AccessDenied):
                await carol.unlock_room(room.room_code)
            with pytest.raises(sc.ValidationError) as unknown:
                await alice.add_moderator(room.room_code, "nobody-by-this-name")
            return room, locked, refused.value, unlocked, unlisted, public, added, moderators, removed, unknown.value

    room, locked, refused, unlocked, unlisted, public, added, moderators, removed, unknown = run(scenario())
    assert locked.access_control.locked and not unlocked.access_control.locked
    assert unlisted.access_control.listed is False
    assert removed == (True, False) and unknown.field == "username"
    assert isinstance(refused, sc.AccessDenied) and isinstance(refused, ValueError) and refused.code == "room_locked"
    assert refused.status == 403
    assert room.room_code not in public
    assert added["username"] == "carol" and [m["username"] for m in moderators] == ["carol"]


def test_timeouts_and_owner_wide_bans(spectator_server, unique):
    training_id = unique()

    async def scenario():
        async with rooms_for(spectator_server, "alice") as alice, rooms_for(spectator_server, "bob") as bob:
            room = await alice.create_spectator_room(training_id)
            other = await alice.create_spectator_room(training_id)
            seat = await bob.join_room_request(room.room_code)
            timeout = await alice.timeout_user(room.room_code, seat["spectator_id"], 600, reason="caps")
            with pytest.raises(sc.TimedOut) as timed_out:
                await bob.join_room_request(room.room_code)
            listed = await alice.list_timeouts(room.room_code)
            ended = await alice.end_timeout(room.room_code, "bob")
            ended_twice = await alice.end_timeout(room.room_code, "bob")
            back = await bob.join_room_request(room.room_code)
            with pytest.raises(sc.ValidationError) as bad:
                await alice.timeout_user(room.room_code, "bob", 0)
            await alice.block_user(room.room_code, "bob", scope="owner")
            with pytest.raises(sc.Banned):
                await bob.join_room_request(other.room_code)
            unblocked = await alice.unblock_user(room.room_code, "bob")
            again = await bob.join_room_request(other.room_code)
            return timeout, timed_out.value, listed, ended, ended_twice, back, bad.value, unblocked, again

    timeout, timed_out, listed, ended, ended_twice, back, bad, unblocked, again = run(scenario())
    assert timeout["username"] == "bob" and timeout["expires_at"] and timeout["reason"] == "caps"
    assert timed_out.code == "timed_out" and isinstance(timed_out, sc.AccessDenied)
    assert [t["username"] for t in listed] == ["bob"]
    assert (ended, ended_twice) == (True, False)
    assert back["status"] == "approved"
    assert bad.field == "duration_seconds"
    assert unblocked and again["status"] == "approved"


def test_invite_links_join_in_one_call_and_are_revocable(spectator_server, unique):
    training_id = unique()

    async def scenario():
        async with (
            rooms_for(spectator_server, "alice") as alice,
            rooms_for(spectator_server, "bob") as bob,
            rooms_for(spectator_server, "carol") as carol,
            rooms_for(spectator_server, None) as guest,
        ):
            room = await alice.create_spectator_room(
                training_id, access_control=RoomAccessControl(AccessLevel.PASSWORD, password="open-sesame")
            )
            link = await alice.create_invite_link(room.room_code, grants_password=True, label="Friends")
            joined = await guest.join_with_invite_link(link["url"], user_name="Guest")
            for_bob = await alice.create_invite_link(room.room_code, user_id="bob")
            with pytest.raises(sc.AccessDenied) as not_yours:
                await carol.join_with_invite_link(for_bob["url"])
            with pytest.raises(sc.InvalidPassword):  # bob's link does not carry the password
                await bob.join_with_invite_link(for_bob["token"], room_code=room.room_code)
            links = await alice.list_invite_links(room.room_code)
            await alice.revoke_invite_link(room.room_code, link["link_id"])
            with pytest.raises(sc.AccessDenied) as revoked:
                await carol.join_with_invite_link(link["url"])
            with pytest.raises(sc.ValidationError) as private_link:
                private = await alice.create_spectator_room(
                    training_id, access_control=RoomAccessControl(AccessLevel.PRIVATE)
                )
                await alice.create_invite_link(private.room_code)
            return room, link, joined, not_yours.value, links, revoked.value, private_link.value

    room, link, joined, not_yours, links, revoked, private_link = run(scenario())
    assert invite_link_parse(link["url"]) == (room.room_code, link["token"])
    assert joined["status"] == "approved" and joined["websocket_url"]
    assert not_yours.code == "invite_link_not_yours"
    assert {item["label"] for item in links} == {"Friends", ""} and all("token" not in item for item in links)
    assert revoked.code == "invite_link_invalid"
    assert private_link.field == "access_level"


def test_audit_log_and_csv(spectator_server, unique):
    training_id = unique()

    async def scenario():
        async with rooms_for(spectator_server, "alice") as alice, rooms_for(spectator_server, "bob") as bob:
            room = await alice.create_spectator_room(training_id)
            await alice.lock_room(room.room_code)
            await alice.unlock_room(room.room_code)
            await alice.add_moderator(room.room_code, "carol")
            log = await alice.get_audit_log(room.room_code)
            text = await alice.export_audit_csv(room.room_code)
            with pytest.raises(sc.AccessDenied):
                await bob.get_audit_log(room.room_code)
            return log, text

    log, text = run(scenario())
    assert [entry["action"] for entry in log] == ["moderator_add", "unlock", "lock"]
    assert all(entry["actor"] == "alice" and entry["ip"] for entry in log)
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][2] == "action" and [row[2] for row in rows[1:]] == ["moderator_add", "unlock", "lock"]


def test_invite_link_parse():
    assert invite_link_parse("https://x.example/r/ABCDEF/?invite=tok.en:1") == ("ABCDEF", "tok.en:1")
    assert invite_link_parse("bare-token") == (None, "bare-token")
