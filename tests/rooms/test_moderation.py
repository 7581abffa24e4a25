"""Moderation on the real database: the new access states through ``services.room_join`` (checked
against the oracle in ``test_access``), admit all, the waiting room, locks, room moderators,
timeouts, owner-wide bans, expiring approvals, invite links, and an audit entry for each."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from rooms import access, events, invite_links, moderation, selectors, services
from rooms.access import AccessRefused, JoinFacts, LinkGrant, PasswordCheck, Refusal, Visitor
from rooms.models import AccessLevel, AuditEntry, Ban, InviteLink, JoinRequest, Room, Spectator
from tests.rooms.test_access import _expected_outcome, expected_decision

pytestmark = pytest.mark.django_db

Action = AuditEntry.Action
RIGHT_PASSWORD = "right-password"


def outcome(room, visitor, *, password=None, invite_token=""):
    try:
        result = services.room_join(
            room=room, visitor=visitor, password=password, invite_token=invite_token, client="test"
        )
    except AccessRefused as refused:
        return refused.refusal
    return result.status


def actions(room) -> list[str]:
    """The room's audit trail in order, without the seat-taking entries (tested on their own)."""
    entries = AuditEntry.objects.filter(room=room).exclude(action=Action.JOIN).order_by("created_at", "id")
    return list(entries.values_list("action", flat=True))


# --- The new states against the database, checked by the oracle ------------------------------

NEW_ROLES = ["moderator", "timed_out", "other", "anonymous", "owner_wide_banned"]
NEW_SCENARIOS = [
    "locked",
    "link",
    "link_with_password",
    "link_revoked",
    "link_expired",
    "link_for_someone_else",
    "approval_expired",
]


@pytest.mark.parametrize("scenario", NEW_SCENARIOS)
@pytest.mark.parametrize("role", NEW_ROLES)
@pytest.mark.parametrize("level", AccessLevel.values)
def test_room_join_new_states_on_the_database(level, role, scenario, make_room, make_user, owner, training_session):
    room = make_room(
        access_level=level,
        password=RIGHT_PASSWORD if level == AccessLevel.PASSWORD else None,
        require_approval=scenario == "approval_expired",
    )
    visitor = (
        Visitor(anon_key=services.anon_key_for("browser")) if role == "anonymous" else Visitor(user=make_user(role))
    )
    facts = {"manager": False, "timed_out": False, "banned": False, "link": LinkGrant.NONE}
    if role == "moderator":
        moderation.moderator_add(room=room, username="moderator", actor=owner)
        facts["manager"] = True
    elif role == "timed_out":
        moderation.timeout_create(room=room, actor=owner, user=visitor.user, duration_seconds=600)
        facts["timed_out"] = True
    elif role == "owner_wide_banned":
        other_room = make_room()
        services.ban_create(room=other_room, actor=owner, user=visitor.user, scope=Ban.Scope.OWNER)
        facts["banned"] = True

    token = ""
    request_status, approval_expired = None, False
    if scenario == "locked":
        moderation.room_lock(room=room, actor=owner, locked=True)
    elif scenario.startswith("link") and level != AccessLevel.PRIVATE:
        named = make_user("someone-else").username if scenario == "link_for_someone_else" else None
        link, token = invite_links.invite_link_create(
            room=room, actor=owner, username=named, grants_password=scenario == "link_with_password"
        )
        facts["link"] = {
            "link": LinkGrant.ENTRY,
            "link_with_password": LinkGrant.ENTRY_WITH_PASSWORD if level == AccessLevel.PASSWORD else LinkGrant.ENTRY,
            "link_revoked": LinkGrant.INVALID,
            "link_expired": LinkGrant.INVALID,
            "link_for_someone_else": LinkGrant.NOT_YOURS,
        }[scenario]
        if scenario == "link_revoked":
            invite_links.invite_link_revoke(link=link, actor=owner)
        if scenario == "link_expired":
            InviteLink.objects.filter(pk=link.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    elif scenario == "approval_expired" and role not in ("moderator",) and level != AccessLevel.PRIVATE:
        Room.objects.filter(pk=room.pk).update(approval_ttl=3600)
        room.refresh_from_db()
        approved_at = timezone.now() - timedelta(hours=2)
        JoinRequest.objects.create(
            room=room,
            user=visitor.user if visitor.signed_in else None,
            anon_key="" if visitor.signed_in else visitor.anon_key,
            display_name="returning",
            status=JoinRequest.Status.APPROVED,
            decided_at=approved_at,
        )
        request_status, approval_expired = JoinRequest.Status.APPROVED, True
    room.refresh_from_db()

    password_typed = RIGHT_PASSWORD if scenario != "link_with_password" else None
    want = _expected_outcome(
        expected_decision(
            JoinFacts(
                access_level=level,
                status=Room.Status.ACTIVE,
                expired=False,
                require_approval=room.require_approval,
                max_spectators=room.max_spectators,
                seats_taken=0,
                signed_in=visitor.signed_in,
                is_manager=facts["manager"],
                is_allowed=False,
                is_banned=facts["banned"],
                already_present=False,
                request_status=request_status,
                password=PasswordCheck.RIGHT if password_typed else PasswordCheck.NOT_CHECKED,
                locked=room.locked,
                is_timed_out=facts["timed_out"],
                approval_expired=approval_expired,
                link=facts["link"],
            )
        )
    )
    assert outcome(room, visitor, password=password_typed, invite_token=token) == want


def test_a_locked_room_keeps_those_present_and_admits_them_again_after_unlock(make_room, make_user, owner):
    room = make_room()
    inside, outside = Visitor(user=make_user("inside")), Visitor(user=make_user("outside"))
    assert outcome(room, inside) == "approved"
    moderation.room_lock(room=room, actor=owner, locked=True)
    assert outcome(room, inside) == "approved"  # already present: stays
    assert outcome(room, outside) == Refusal.LOCKED
    assert outcome(room, Visitor(user=owner)) == "approved"
    moderation.room_lock(room=room, actor=owner, locked=False)
    assert outcome(room, outside) == "approved"
    assert actions(room) == [Action.LOCK, Action.UNLOCK]
    moderation.room_lock(room=room, actor=owner, locked=False)  # idempotent, no entry
    assert actions(room) == [Action.LOCK, Action.UNLOCK]


# --- Waiting room ------------------------------------------------------------------------------


def test_admit_all_approves_everyone_waiting_and_records_each(make_room, make_user, owner):
    room = make_room(require_approval=True)
    waiting = [Visitor(user=make_user(f"w{n}")) for n in range(3)] + [Visitor(anon_key=services.anon_key_for("g"))]
    for visitor in waiting:
        assert outcome(room, visitor) == "pending_approval"
    assert moderation.join_requests_admit_all(room=room, actor=owner, ip="203.0.113.9") == 4
    for visitor in waiting:
        assert outcome(room, visitor) == "approved"
    trail = AuditEntry.objects.filter(room=room)
    assert trail.filter(action=Action.ADMIT).count() == 4
    summary = trail.get(action=Action.ADMIT_ALL)
    assert summary.details == {"admitted": 4} and summary.ip == "203.0.113.9" and summary.actor == owner
    assert moderation.join_requests_admit_all(room=room, actor=owner) == 0


def test_turning_approval_off_admits_everyone_waiting_and_is_audited(make_room, make_user, owner):
    room = make_room(require_approval=True)
    visitor = Visitor(user=make_user("waiter"))
    assert outcome(room, visitor) == "pending_approval"
    services.room_access_update(room=room, actor=owner, require_approval=False, ip="198.51.100.7")
    assert access.latest_join_request(room, visitor).status == JoinRequest.Status.APPROVED
    assert set(actions(room)) == {Action.APPROVAL_CHANGE, Action.ADMIT}
    change = AuditEntry.objects.get(room=room, action=Action.APPROVAL_CHANGE)
    assert change.details == {"from": True, "to": False} and change.ip == "198.51.100.7"


def test_waiting_place_and_owner_message(make_room, make_user, owner):
    room = make_room(require_approval=True)
    services.room_access_update(room=room, actor=owner, waiting_message="Back in 5 minutes")
    first = services.room_join(room=room, visitor=Visitor(user=make_user("a"))).join_request
    second = services.room_join(room=room, visitor=Visitor(user=make_user("b"))).join_request
    assert moderation.join_request_place(first) == 1
    assert moderation.join_request_place(second) == 2
    services.join_request_decide(join_request=first, approver=owner, approved=True)
    first.refresh_from_db()
    assert moderation.join_request_place(first) is None
    assert moderation.join_request_place(second) == 1
    message = events.sent_to_waiting(second, spectator_id=7, place=1)
    assert message == {
        "type": "waiting",
        "spectator_id": 7,
        "request_id": second.pk,
        "place": 1,
        "message": "Back in 5 minutes",
    }


def test_send_to_waiting_frees_the_seat_and_files_a_request(
    make_room, make_user, owner, monkeypatch, django_capture_on_commit_callbacks
):
    room = make_room(require_approval=True)
    visitor = Visitor(user=make_user("viewer"))
    services.room_join(room=room, visitor=visitor)
    services.join_request_decide(join_request=access.latest_join_request(room, visitor), approver=owner, approved=True)
    spectator = services.room_join(room=room, visitor=visitor).spectator
    published = []
    monkeypatch.setattr(events, "publish", lambda room_id, message, **envelope: published.append((message, envelope)))
    with django_capture_on_commit_callbacks(execute=True):
        join_request = moderation.spectator_send_to_waiting(spectator=spectator, actor=owner, ip="192.0.2.1")
    spectator.refresh_from_db()
    assert spectator.left_reason == Spectator.LeftReason.WAITING
    assert join_request.status == JoinRequest.Status.PENDING
    assert outcome(room, visitor) == "pending_approval"
    with pytest.raises(AccessRefused):
        services.room_reconnect(room=room, spectator_id=spectator.pk)
    entry = AuditEntry.objects.get(room=room, action=Action.SEND_TO_WAITING)
    assert entry.target_user == visitor.user and entry.ip == "192.0.2.1"
    waiting = [(m, e) for m, e in published if m["type"] == "waiting"]
    assert waiting and waiting[0][1]["close_code"] == events.CLOSE_WAITING == 4202
    assert waiting[0][1]["spectator_id"] == spectator.pk and waiting[0][0]["place"] == 1


def test_send_to_waiting_needs_approval_on_and_a_present_non_manager(make_room, make_user, owner):
    room = make_room()
    spectator = services.room_join(room=room, visitor=Visitor(user=make_user("viewer"))).spectator
    with pytest.raises(ValidationError) as excinfo:
        moderation.spectator_send_to_waiting(spectator=spectator, actor=owner)
    assert "require_approval" in excinfo.value.message_dict
    services.room_access_update(room=room, actor=owner, require_approval=True)
    own_seat = services.room_join(room=room, visitor=Visitor(user=owner)).spectator
    with pytest.raises(ValidationError):
        moderation.spectator_send_to_waiting(spectator=own_seat, actor=owner)
    with pytest.raises(PermissionDenied):
        moderation.spectator_send_to_waiting(spectator=spectator, actor=make_user("stranger"))


def test_approvals_expire_after_the_room_ttl(make_room, make_user, owner):
    room = make_room(require_approval=True)
    services.room_access_update(room=room, actor=owner, approval_ttl=24 * 3600)
    visitor = Visitor(user=make_user("returning"))
    services.room_join(room=room, visitor=visitor)
    services.join_request_decide(join_request=access.latest_join_request(room, visitor), approver=owner, approved=True)
    seat = services.room_join(room=room, visitor=visitor).spectator
    services.room_leave(spectator=seat)
    assert outcome(room, visitor) == "approved"  # within the day
    services.room_leave(spectator=access.current_spectator(room, visitor))
    JoinRequest.objects.filter(room=room).update(decided_at=timezone.now() - timedelta(hours=25))
    assert outcome(room, visitor) == "pending_approval"  # asks again
    assert JoinRequest.objects.filter(room=room, status=JoinRequest.Status.PENDING).count() == 1


# --- Moderators ------------------------------------------------------------------------------


def test_room_moderators_manage_but_do_not_close(make_room, make_user, owner):
    room = make_room(require_approval=True, max_spectators=1)
    mod = make_user("mod")
    moderator, created = moderation.moderator_add(room=room, username="mod", actor=owner)
    assert created and access.can_manage_room(mod, room) and not access.can_own_room(mod, room)
    assert moderation.moderator_add(room=room, username="mod", actor=owner)[1] is False
    assert outcome(room, Visitor(user=mod)) == "approved"  # never waits
    assert access.seats_taken(room) == 0  # takes no seat
    guest = Visitor(user=make_user("guest"))
    assert outcome(room, guest) == "pending_approval"
    services.join_request_decide(join_request=access.latest_join_request(room, guest), approver=mod, approved=True)
    moderation.moderator_add(room=room, username="guest", actor=mod)  # moderators name moderators
    with pytest.raises(PermissionDenied):
        services.room_close(room=room, actor=mod)
    with pytest.raises(ValidationError):
        moderation.moderator_add(room=room, username="owner", actor=mod)
    with pytest.raises(ValidationError):
        moderation.moderator_add(room=room, username="nobody", actor=owner)
    with pytest.raises(PermissionDenied):
        moderation.moderator_add(room=room, username="guest", actor=make_user("stranger"))
    moderation.moderator_remove(moderator=moderator, actor=owner)
    assert not access.can_manage_room(mod, room)
    assert actions(room).count(Action.MODERATOR_ADD) == 2
    assert Action.MODERATOR_REMOVE in actions(room)


# --- Timeouts and bans -------------------------------------------------------------------------


def test_timeout_removes_and_keeps_out_until_it_ends(make_room, make_user, owner, monkeypatch):
    room = make_room()
    user = make_user("noisy")
    seat = services.room_join(room=room, visitor=Visitor(user=user)).spectator
    timeout = moderation.timeout_create(room=room, actor=owner, user=user, duration_seconds=60, reason="spam")
    seat.refresh_from_db()
    assert seat.left_reason == Spectator.LeftReason.SUSPENDED
    assert outcome(room, Visitor(user=user)) == Refusal.TIMED_OUT
    with pytest.raises(AccessRefused) as excinfo:
        services.room_reconnect(room=room, spectator_id=seat.pk)
    assert excinfo.value.refusal == Refusal.TIMED_OUT
    Ban.objects.filter(pk=timeout.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert outcome(room, Visitor(user=user)) == "approved"  # the time passed
    # A new timeout replaces the old, unlifted one; ending it early lets them back.
    services.room_leave(spectator=access.current_spectator(room, Visitor(user=user)))
    again = moderation.timeout_create(room=room, actor=owner, user=user, duration_seconds=600)
    assert again.pk == timeout.pk and outcome(room, Visitor(user=user)) == Refusal.TIMED_OUT
    services.ban_lift(ban=again, actor=owner)
    assert outcome(room, Visitor(user=user)) == "approved"
    assert actions(room) == [Action.TIMEOUT, Action.TIMEOUT, Action.TIMEOUT_END]


def test_timeout_validates_its_input(make_room, make_user, owner):
    room = make_room()
    user = make_user("someone")
    for seconds in (0, -5, moderation.MAX_TIMEOUT_SECONDS + 1):
        with pytest.raises(ValidationError) as excinfo:
            moderation.timeout_create(room=room, actor=owner, user=user, duration_seconds=seconds)
        assert "duration_seconds" in excinfo.value.message_dict
    with pytest.raises(ValidationError):
        moderation.timeout_create(room=room, actor=owner, user=owner, duration_seconds=60)
    services.ban_create(room=room, actor=owner, user=user)
    with pytest.raises(ValidationError):
        moderation.timeout_create(room=room, actor=owner, user=user, duration_seconds=60)


def test_timing_out_an_anonymous_spectator(make_room, owner):
    room = make_room()
    guest = Visitor(anon_key=services.anon_key_for("guest"))
    seat = services.room_join(room=room, visitor=guest).spectator
    moderation.timeout_create(room=room, actor=owner, spectator=seat, duration_seconds=60)
    assert outcome(room, guest) == Refusal.TIMED_OUT


def test_owner_wide_ban_bars_every_room_of_the_owner_and_unban_lifts_it(make_room, make_user, owner, training_session):
    first, second = make_room(), make_room()
    user = make_user("troll")
    seat = services.room_join(room=second, visitor=Visitor(user=user)).spectator
    ban = services.ban_create(room=first, actor=owner, user=user, scope=Ban.Scope.OWNER, ip="2001:db8::1")
    seat.refresh_from_db()
    assert seat.left_reason == Spectator.LeftReason.BANNED  # removed from the other room too
    assert outcome(first, Visitor(user=user)) == Refusal.BANNED
    assert outcome(second, Visitor(user=user)) == Refusal.BANNED
    assert AuditEntry.objects.get(action=Action.BAN).ip == "2001:db8::1"
    # Another owner's rooms are not affected.
    from metrics.services import training_session_create

    rival = make_user("rival")
    rival_session, _ = training_session_create(owner=rival, id="rival-run")
    rival_room, _ = services.room_create(creator=rival, training_session=rival_session)
    assert outcome(rival_room, Visitor(user=user)) == "approved"
    services.ban_lift(ban=ban, actor=owner)
    assert outcome(second, Visitor(user=user)) == "approved"
    assert [a for a in actions(first)] == [Action.BAN, Action.UNBAN]
    with pytest.raises(ValidationError):
        services.ban_create(room=first, actor=owner, user=user, scope="galaxy")


def test_a_ban_replaces_a_running_timeout(make_room, make_user, owner):
    room = make_room()
    user = make_user("x")
    timeout = moderation.timeout_create(room=room, actor=owner, user=user, duration_seconds=60)
    ban = services.ban_create(room=room, actor=owner, user=user, reason="again")
    assert ban.pk == timeout.pk and ban.expires_at is None
    assert outcome(room, Visitor(user=user)) == Refusal.BANNED


# --- Invite links --------------------------------------------------------------------------


def test_invite_link_into_a_password_room_skips_the_password_once_counted_and_audited(make_room, make_user, owner):
    room = make_room(access_level=AccessLevel.PASSWORD, password=RIGHT_PASSWORD)
    link, token = invite_links.invite_link_create(room=room, actor=owner, grants_password=True, ip="192.0.2.5")
    assert link.secret_hash not in token and len(link.secret_hash) == 64
    guest = Visitor(anon_key=services.anon_key_for("guest"))
    assert outcome(room, guest, invite_token=token) == "approved"
    link.refresh_from_db()
    assert link.uses == 1
    assert actions(room) == [Action.INVITE_LINK_CREATE, Action.INVITE_LINK_JOIN]
    invite_links.invite_link_revoke(link=link, actor=owner)
    other = Visitor(anon_key=services.anon_key_for("other"))
    assert outcome(room, other, invite_token=token) == Refusal.LINK_INVALID
    assert actions(room)[-1] == Action.INVITE_LINK_REVOKE


def test_invite_link_tokens_cannot_be_forged(make_room, owner):
    room = make_room()
    link, token = invite_links.invite_link_create(room=room, actor=owner)
    guest = Visitor(anon_key=services.anon_key_for("guest"))
    assert invite_links.invite_link_grant(room, guest, token)[0] == LinkGrant.ENTRY
    for bad in (token[:-2] + "xx", "garbage", invite_links.invite_link_token(link, "wrong-secret")):
        assert invite_links.invite_link_grant(room, guest, bad) == (LinkGrant.INVALID, None)
    other_room = make_room()
    assert invite_links.invite_link_grant(other_room, guest, token)[0] == LinkGrant.INVALID


def test_invite_link_for_a_named_user_refuses_everyone_else(make_room, make_user, owner):
    room = make_room(access_level=AccessLevel.INVITE_ONLY)
    alice, bob = make_user("alice"), make_user("bob")
    _link, token = invite_links.invite_link_create(room=room, actor=owner, username="alice")
    assert outcome(room, Visitor(user=bob), invite_token=token) == Refusal.LINK_NOT_YOURS
    assert outcome(room, Visitor(anon_key=services.anon_key_for("x")), invite_token=token) == Refusal.LINK_NOT_YOURS
    assert outcome(room, Visitor(user=alice), invite_token=token) == "approved"
    # The link left an invitation, so alice reconnects and rejoins without it.
    services.room_leave(spectator=access.current_spectator(room, Visitor(user=alice)))
    assert outcome(room, Visitor(user=alice)) == "approved"


def test_invite_link_create_validates(make_room, make_user, owner):
    with pytest.raises(ValidationError) as excinfo:
        invite_links.invite_link_create(room=make_room(access_level=AccessLevel.PRIVATE), actor=owner)
    assert "access_level" in excinfo.value.message_dict
    room = make_room()
    for hours in (0, -1, invite_links.MAX_HOURS + 1):
        with pytest.raises(ValidationError) as excinfo:
            invite_links.invite_link_create(room=room, actor=owner, expires_in_hours=hours)
        assert "expires_in_hours" in excinfo.value.message_dict
    with pytest.raises(ValidationError):
        invite_links.invite_link_create(room=room, actor=owner, username="ghost")
    with pytest.raises(PermissionDenied):
        invite_links.invite_link_create(room=room, actor=make_user("stranger"))
    link, _ = invite_links.invite_link_create(room=room, actor=owner, grants_password=True)
    assert not link.grants_password  # a public room has no password to grant


# --- Listing --------------------------------------------------------------------------------


def test_unlisted_public_rooms_leave_the_lobby_but_stay_joinable(make_room, make_user, owner):
    public = make_room()
    password = make_room(access_level=AccessLevel.PASSWORD)
    hidden = [make_room(access_level=AccessLevel.INVITE_ONLY), make_room(access_level=AccessLevel.PRIVATE)]
    assert set(selectors.room_list_public()) == {public, password}
    services.room_access_update(room=public, actor=owner, listed=False)
    assert set(selectors.room_list_public()) == {password}
    assert not access.is_listed(public) and access.is_listed(password)
    for room in hidden:
        Room.objects.filter(pk=room.pk).update(listed=True)
        room.refresh_from_db()
        assert not access.is_listed(room)
    assert outcome(public, Visitor(user=make_user("linked"))) == "approved"
    assert actions(public) == [Action.LISTING_CHANGE]


# --- Audit ---------------------------------------------------------------------------------


def test_every_action_leaves_an_audit_entry(make_room, make_user, owner):
    room = make_room(access_level=AccessLevel.PASSWORD, require_approval=True)
    user = make_user("target")
    visitor = Visitor(user=user)
    services.room_join(room=room, visitor=visitor, password=room.plain_password)
    services.join_request_decide(join_request=access.latest_join_request(room, visitor), approver=owner, approved=False)
    services.room_password_regenerate(room=room, actor=owner, ip="10.0.0.1")
    services.room_access_update(room=room, actor=owner, access_level=AccessLevel.PUBLIC, max_spectators=5)
    other = Visitor(user=make_user("other"))
    services.room_join(room=room, visitor=other)
    services.join_request_decide(join_request=access.latest_join_request(room, other), approver=owner, approved=True)
    seat = services.room_join(room=room, visitor=other).spectator
    services.spectator_kick(spectator=seat, actor=owner)
    services.ban_create(room=room, actor=owner, user=user)
    services.room_close(room=room, actor=owner)
    recorded = actions(room)
    for action in (
        Action.DENY,
        Action.PASSWORD_REGENERATE,
        Action.LEVEL_CHANGE,
        Action.ACCESS_CHANGE,
        Action.ADMIT,
        Action.KICK,
        Action.BAN,
        Action.ROOM_CLOSE,
    ):
        assert action in recorded, action
    entry = AuditEntry.objects.get(room=room, action=Action.PASSWORD_REGENERATE)
    assert entry.actor_name == "owner" and entry.ip == "10.0.0.1" and entry.room_code == room.code
    assert AuditEntry.objects.get(room=room, action=Action.DENY).target_name == "target"
    assert AuditEntry.objects.get(room=room, action=Action.LEVEL_CHANGE).details == {
        "from": AccessLevel.PASSWORD,
        "to": AccessLevel.PUBLIC,
    }
    assert AuditEntry.objects.get(room=room, action=Action.ACCESS_CHANGE).details["max_spectators"] == {
        "from": 10,
        "to": 5,
    }


def test_every_seat_taken_is_audited_once_with_why_it_was_given(make_room, make_user, owner):
    public, locked_by_password = make_room(), make_room(access_level=AccessLevel.PASSWORD)
    invite_only = make_room(access_level=AccessLevel.INVITE_ONLY)
    ann, guest = make_user("ann"), Visitor(anon_key=services.anon_key_for("guest"))
    services.invitation_create(room=invite_only, username="ann", actor=owner)

    services.room_join(room=public, visitor=guest, display_name="Guest A", ip="192.0.2.7")
    services.room_join(room=public, visitor=guest)  # back with the seat it holds: no new entry
    services.room_join(room=locked_by_password, visitor=Visitor(user=ann), password=locked_by_password.plain_password)
    services.room_join(room=invite_only, visitor=Visitor(user=ann))
    services.room_join(room=invite_only, visitor=Visitor(user=owner))

    def joins(room):
        return [
            (entry.actor_name, entry.details["via"], entry.ip)
            for entry in AuditEntry.objects.filter(room=room, action=Action.JOIN).order_by("pk")
        ]

    assert joins(public) == [("Guest A", "public", "192.0.2.7")]
    assert joins(locked_by_password) == [("ann", "password", None)]
    assert joins(invite_only) == [("ann", "invitation", None), ("owner", "manager", None)]


def test_invitations_and_allowed_users_changes_are_audited(make_room, make_user, owner):
    room = make_room(access_level=AccessLevel.INVITE_ONLY)
    for name in ("ann", "bob", "cat"):
        make_user(name)
    invitation, created = services.invitation_create(room=room, username="ann", actor=owner)
    assert created
    services.invitation_create(room=room, username="ann", actor=owner)  # already invited: nothing new
    services.invitation_revoke(invitation=invitation, actor=owner)
    services.invitation_revoke(invitation=invitation, actor=owner)  # idempotent, audited once
    services.room_access_update(room=room, actor=owner, allowed_users=["ann", "bob"])
    services.room_access_update(room=room, actor=owner, allowed_users=["bob", "cat"])
    services.room_access_update(room=room, actor=owner, allowed_users=["cat", "bob"])  # the same set

    invites = AuditEntry.objects.filter(room=room, action__in=[Action.INVITE, Action.INVITE_REVOKE]).order_by("pk")
    assert [(entry.action, entry.target_name) for entry in invites] == [
        (Action.INVITE, "ann"),
        (Action.INVITE_REVOKE, "ann"),
    ]
    changes = AuditEntry.objects.filter(room=room, action=Action.ACCESS_CHANGE).order_by("pk")
    assert [entry.details for entry in changes] == [
        {"allowed_users": {"added": ["ann", "bob"], "removed": []}},
        {"allowed_users": {"added": ["cat"], "removed": ["ann"]}},
    ]


def test_audit_entries_are_rolled_back_with_their_action(make_room, make_user, owner):
    room = make_room()
    with pytest.raises(ValidationError):
        services.room_access_update(room=room, actor=owner, listed=False, room_duration_hours=-1)
    assert actions(room) == []


def test_auto_approval_is_recorded_as_the_system(make_room, make_user, owner):
    room = make_room(require_approval=True, auto_approve_timeout=1)
    visitor = Visitor(user=make_user("patient"))
    services.room_join(room=room, visitor=visitor)
    JoinRequest.objects.filter(room=room).update(created_at=timezone.now() - timedelta(seconds=5))
    assert services.join_requests_auto_approve() == 1
    entry = AuditEntry.objects.get(room=room, action=Action.ADMIT)
    assert entry.actor is None and entry.actor_name == "system" and entry.details["auto"] is True


def test_every_audit_action_is_written_by_some_service(make_room, make_user, owner):
    """One pass through every action: each ``AuditEntry.Action`` gets an entry with its actor."""
    room = make_room(access_level=AccessLevel.PASSWORD, require_approval=True)
    users = {name: make_user(name) for name in ("ann", "bob", "cat", "mod")}
    ip = "192.0.2.10"

    def seat(name):
        visitor = Visitor(user=users[name])
        services.room_join(room=room, visitor=visitor, password=room.plain_password, ip=ip)
        request = access.latest_join_request(room, visitor)
        if request is not None and request.status == JoinRequest.Status.PENDING:
            services.join_request_decide(join_request=request, approver=owner, approved=True, ip=ip)
        return services.room_join(room=room, visitor=visitor, ip=ip).spectator

    moderation.moderator_add(room=room, username="mod", actor=owner, ip=ip)
    services.room_join(room=room, visitor=Visitor(user=users["cat"]), password=room.plain_password)
    moderation.join_requests_admit_all(room=room, actor=owner, ip=ip)
    services.join_request_decide(
        join_request=services.room_join(
            room=room, visitor=Visitor(anon_key=services.anon_key_for("x")), password=room.plain_password
        ).join_request,
        approver=owner,
        approved=False,
        ip=ip,
    )
    moderation.spectator_send_to_waiting(spectator=seat("ann"), actor=owner, ip=ip)
    services.spectator_kick(spectator=seat("bob"), actor=owner, ip=ip)
    timeout = moderation.timeout_create(room=room, actor=owner, user=users["bob"], duration_seconds=60, ip=ip)
    services.ban_lift(ban=timeout, actor=owner, ip=ip)
    ban = services.ban_create(room=room, actor=owner, user=users["bob"], ip=ip)
    services.ban_lift(ban=ban, actor=owner, ip=ip)
    moderation.room_lock(room=room, actor=owner, locked=True, ip=ip)
    moderation.room_lock(room=room, actor=owner, locked=False, ip=ip)
    services.room_password_regenerate(room=room, actor=owner, ip=ip)
    link, token = invite_links.invite_link_create(room=room, actor=owner, grants_password=True, ip=ip)
    services.room_access_update(room=room, actor=owner, require_approval=False, ip=ip)
    services.room_join(
        room=room,
        visitor=Visitor(anon_key=services.anon_key_for("y")),
        display_name="Linked Guest",
        invite_token=token,
        ip=ip,
    )
    invite_links.invite_link_revoke(link=link, actor=owner, ip=ip)
    services.room_access_update(room=room, actor=owner, access_level=AccessLevel.PUBLIC, ip=ip)
    services.room_access_update(room=room, actor=owner, listed=False, max_spectators=3, ip=ip)
    invitation, _created = services.invitation_create(room=room, username="ann", actor=owner, ip=ip)
    services.invitation_revoke(invitation=invitation, actor=owner, ip=ip)
    moderation.moderator_remove(moderator=room.moderators.get(), actor=owner, ip=ip)
    services.room_close(room=room, actor=owner, ip=ip)

    entries = AuditEntry.objects.filter(room=room)
    assert set(entries.values_list("action", flat=True)) == set(Action.values)
    assert set(entries.values_list("ip", flat=True)) == {ip}
    by_visitors = [Action.INVITE_LINK_JOIN, Action.JOIN]
    assert set(entries.exclude(action__in=by_visitors).values_list("actor_name", flat=True)) == {"owner"}
    joins = sorted((entry.actor_name, entry.details["via"]) for entry in entries.filter(action=Action.JOIN))
    assert joins == [("ann", "approval"), ("bob", "approval")]
    assert all(entry.room_code == room.code and entry.owner_id == owner.pk for entry in entries)
    assert entries.get(action=Action.INVITE_LINK_JOIN).actor_name == "Linked Guest"
