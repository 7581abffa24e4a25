"""The moderation console's new parts: lock and admit-all actions, moderators inline, timeouts and
sending back to the waiting room, invite links (revoke), the audit trail and its CSV export."""

import csv
import io

import pytest
from django.urls import reverse

from rooms import invite_links, moderation, services
from rooms.access import Visitor
from rooms.models import AuditEntry, Ban, InviteLink, JoinRequest, Room, RoomModerator, Spectator
from tests.rooms.test_admin import change_form_data, change_url, changelist_url, run_action

pytestmark = pytest.mark.django_db


def join(room, user, **kwargs):
    return services.room_join(room=room, visitor=Visitor(user=user), **kwargs)


def test_lock_unlock_and_admit_all_actions(admin_client, admin_user, make_room, make_user):
    room = make_room(require_approval=True)
    waiting = [join(room, make_user(f"w{n}")).join_request for n in range(2)]
    run_action(admin_client, Room, "admit_all_waiting", [room])
    assert {jr.status for jr in JoinRequest.objects.filter(pk__in=[w.pk for w in waiting])} == {"approved"}
    run_action(admin_client, Room, "lock_rooms", [room])
    room.refresh_from_db()
    assert room.locked
    run_action(admin_client, Room, "unlock_rooms", [room])
    room.refresh_from_db()
    assert not room.locked
    recorded = set(AuditEntry.objects.filter(room=room, actor=admin_user).values_list("action", flat=True))
    assert {"admit_all", "admit", "lock", "unlock"} <= recorded


def test_moderators_inline_adds_and_removes_through_the_service(admin_client, admin_user, make_room, make_user):
    room = make_room()
    helper = make_user("helper")
    page = admin_client.get(change_url(room))
    data = change_form_data(page)
    data["moderators-TOTAL_FORMS"] = str(int(data["moderators-TOTAL_FORMS"]) + 1)
    data["moderators-0-user"] = str(helper.pk)
    data["moderators-0-room"] = str(room.pk)
    response = admin_client.post(change_url(room), data)
    assert response.status_code == 302, response.content[:2000]
    assert RoomModerator.objects.filter(room=room, user=helper).exists()
    assert AuditEntry.objects.filter(room=room, action="moderator_add", target_user=helper).exists()

    page = admin_client.get(change_url(room))
    data = change_form_data(page)
    data["moderators-0-DELETE"] = "on"
    response = admin_client.post(change_url(room), data)
    assert response.status_code == 302
    assert not RoomModerator.objects.filter(room=room).exists()
    assert AuditEntry.objects.filter(room=room, action="moderator_remove").exists()


def test_allowed_users_edited_in_the_admin_are_audited(admin_client, admin_user, make_room, make_user):
    room = make_room(access_level="invite_only")
    ann = make_user("ann")
    data = change_form_data(admin_client.get(change_url(room)))
    data["allowed_users"] = [str(ann.pk)]
    response = admin_client.post(change_url(room), data)

    assert response.status_code == 302, response.content[:2000]
    assert list(room.allowed_users.all()) == [ann]
    entry = AuditEntry.objects.get(room=room, action="access_change")
    assert (entry.actor, entry.details) == (admin_user, {"allowed_users": {"added": ["ann"], "removed": []}})


def test_spectator_timeout_and_send_to_waiting_actions(admin_client, make_room, make_user):
    room = make_room(require_approval=True, allowed_users=[])
    first, second = make_user("first"), make_user("second")
    seats = []
    for user in (first, second):
        join(room, user)
        services.join_request_decide(
            join_request=JoinRequest.objects.get(room=room, user=user), approver=room.creator, approved=True
        )
        seats.append(join(room, user).spectator)
    run_action(admin_client, Spectator, "time_out", [seats[0]])
    run_action(admin_client, Spectator, "send_to_waiting", [seats[1]])
    seats[0].refresh_from_db()
    seats[1].refresh_from_db()
    assert seats[0].left_reason == Spectator.LeftReason.SUSPENDED
    assert Ban.objects.get(room=room, user=first).expires_at is not None
    assert seats[1].left_reason == Spectator.LeftReason.WAITING
    assert join(room, second).status == "pending_approval"
    # Timeouts show in the ban list under their own filter, and lifting ends them.
    response = admin_client.get(changelist_url(Ban), {"kind": "timeout"})
    assert [ban.user for ban in response.context["cl"].result_list] == [first]
    run_action(admin_client, Ban, "lift", list(Ban.objects.filter(room=room)))
    assert join(room, first).status == "approved"


def test_invite_link_admin_revokes(admin_client, make_room, owner):
    room = make_room()
    link, _token = invite_links.invite_link_create(room=room, actor=owner)
    response = admin_client.get(changelist_url(InviteLink))
    assert response.status_code == 200
    assert b"secret_hash" not in response.content
    run_action(admin_client, InviteLink, "revoke", [link])
    link.refresh_from_db()
    assert link.revoked_at is not None
    assert admin_client.get(reverse("admin:rooms_invitelink_add")).status_code == 403
    assert b"secret_hash" not in admin_client.get(change_url(link)).content


def test_audit_admin_lists_filters_and_exports_csv(admin_client, make_room, owner, make_user):
    room = make_room()
    moderation.room_lock(room=room, actor=owner, locked=True, ip="192.0.2.44")
    moderation.moderator_add(room=room, username=make_user("=cmd").username, actor=owner)
    response = admin_client.get(changelist_url(AuditEntry), {"action": "lock"})
    assert response.status_code == 200
    assert [entry.action for entry in response.context["cl"].result_list] == ["lock"]
    entries = list(AuditEntry.objects.all())
    response = run_action(admin_client, AuditEntry, "export_csv", entries)
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:3] == ["created_at", "room_code", "action"]
    assert {row[2] for row in rows[1:]} == {"lock", "moderator_add"}
    assert any(row[4] == "'=cmd" for row in rows[1:])
    assert any(row[5] == "192.0.2.44" for row in rows[1:])
    entry = entries[0]
    assert admin_client.post(change_url(entry), {}).status_code == 403  # read-only


def test_audit_admin_is_not_for_non_staff(client, make_user):
    client.force_login(make_user("plain"))
    response = client.get(changelist_url(AuditEntry))
    assert response.status_code == 302
