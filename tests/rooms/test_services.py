"""Every write in rooms.services (and the training-session services rooms depend on), with
their error paths, and publishing after commit."""

import contextlib
import inspect
import json
import re
import time
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from metrics.models import TrainingSession
from metrics.services import training_session_close, training_session_create
from rooms import access, events, services
from rooms.access import AccessRefused, Refusal, Visitor
from rooms.lockout import LockedOut
from rooms.models import AccessLevel, Ban, Invitation, JoinRequest, Room, Spectator
from rooms.passwords import room_password_matches as check_password

PENDING, APPROVED, DENIED, EXPIRED = (
    JoinRequest.Status.PENDING,
    JoinRequest.Status.APPROVED,
    JoinRequest.Status.DENIED,
    JoinRequest.Status.EXPIRED,
)


@pytest.fixture
def people(make_user, owner):
    return {
        "owner": owner,
        "staff": make_user("moderator", staff=True),
        "ann": make_user("ann"),
        "bob": make_user("bob"),
        "cat": make_user("cat"),
    }


def as_user(user) -> Visitor:
    return Visitor(user=user)


def as_guest(secret: str) -> Visitor:
    return Visitor(anon_key=services.anon_key_for(secret))


def join(room, visitor, **kwargs):
    return services.room_join(room=room, visitor=visitor, **kwargs)


def refusal_of(room, visitor, **kwargs) -> Refusal:
    with pytest.raises(AccessRefused) as excinfo:
        join(room, visitor, **kwargs)
    return excinfo.value.refusal


def error_fields(excinfo) -> set:
    return set(excinfo.value.message_dict)


def present_count(room) -> int:
    return Spectator.objects.filter(room=room, left_at__isnull=True).count()


# --- room_create and passwords -----------------------------------------------------------------


def _row_text(room) -> str:
    row = Room.objects.filter(pk=room.pk).values().get()
    return " ".join(str(value) for value in row.values())


def test_password_room_gets_a_generated_password_stored_only_hashed(owner, training_session):
    room, password = services.room_create(
        creator=owner, training_session=training_session, access_level=AccessLevel.PASSWORD
    )
    assert password and len(password) >= 12
    assert room.password_hash and room.password_hash != password
    assert password not in _row_text(room)
    assert check_password(password, Room.objects.get(pk=room.pk).password_hash)
    assert not check_password(password + "x", room.password_hash)


def test_password_given_by_the_creator_is_returned_and_hashed(make_room):
    room = make_room(access_level=AccessLevel.PASSWORD, password="open-sesame")
    assert room.plain_password == "open-sesame"
    assert "open-sesame" not in _row_text(room)
    assert check_password("open-sesame", room.password_hash)


def test_generated_passwords_differ(owner, training_session):
    passwords = {
        services.room_create(creator=owner, training_session=training_session, access_level=AccessLevel.PASSWORD)[1]
        for _ in range(5)
    }
    assert len(passwords) == 5


@pytest.mark.parametrize("level", [AccessLevel.PUBLIC, AccessLevel.INVITE_ONLY, AccessLevel.PRIVATE])
def test_rooms_without_password_level_have_no_password(make_room, level):
    room = make_room(access_level=level)
    assert room.plain_password is None
    assert room.password_hash == ""


@pytest.mark.parametrize("password", ["abc", "x" * 129])
def test_room_password_length_is_checked(make_room, password):
    with pytest.raises(ValidationError) as excinfo:
        make_room(access_level=AccessLevel.PASSWORD, password=password)
    assert error_fields(excinfo) == {"password"}
    assert not Room.objects.exists()


def test_room_create_fields(make_room, people):
    before = timezone.now()
    room = make_room(
        name="Watch me",
        max_spectators=7,
        allowed_users=["ann", "bob"],
        blocked_users=["cat"],
        require_approval=True,
        auto_approve_timeout=30,
        duration_hours=2,
    )
    room.refresh_from_db()
    assert room.status == Room.Status.ACTIVE
    assert room.creator == people["owner"]
    assert set(room.allowed_users.values_list("username", flat=True)) == {"ann", "bob"}
    ban = Ban.objects.get(room=room)
    assert ban.user == people["cat"] and ban.lifted_at is None and ban.banned_by == people["owner"]
    assert before + timedelta(hours=2) <= room.expires_at <= timezone.now() + timedelta(hours=2)
    assert (room.max_spectators, room.require_approval, room.auto_approve_timeout) == (7, True, 30)


def test_room_create_refuses_strangers_and_lets_staff_create_for_the_owner(people, training_session):
    with pytest.raises(PermissionDenied):
        services.room_create(creator=people["ann"], training_session=training_session)
    room, _ = services.room_create(creator=people["staff"], training_session=training_session)
    assert room.training_session == training_session
    assert Room.objects.count() == 1


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"access_level": "secret"}, "access_level"),
        ({"duration_hours": 0}, "room_duration_hours"),
        ({"duration_hours": -1}, "room_duration_hours"),
        ({"duration_hours": 24 * 365}, "room_duration_hours"),
        ({"allowed_users": ["nobody-here"]}, "allowed_users"),
        ({"blocked_users": ["nobody-here"]}, "blocked_users"),
        ({"max_spectators": 0}, "max_spectators"),
        ({"name": "x" * 201}, "name"),
        ({"spectator_mode": "circus"}, "spectator_mode"),
    ],
)
def test_room_create_validation_errors_name_the_field(make_room, kwargs, field):
    with pytest.raises(ValidationError) as excinfo:
        make_room(**kwargs)
    assert field in error_fields(excinfo)
    assert not Room.objects.exists()
    assert not Ban.objects.exists()


def test_room_create_refuses_a_closed_training_session(make_room, training_session, owner):
    training_session_close(training_session=training_session, actor=owner)
    with pytest.raises(ValidationError) as excinfo:
        make_room()
    assert error_fields(excinfo) == {"training_session_id"}


def test_room_password_regenerate(make_room, people, owner):
    room = make_room(access_level=AccessLevel.PASSWORD, password="first-password")
    new_password = services.room_password_regenerate(room=room, actor=owner)
    assert new_password != "first-password"
    room.refresh_from_db()
    assert check_password(new_password, room.password_hash)
    assert not check_password("first-password", room.password_hash)
    assert new_password not in _row_text(room)
    assert refusal_of(room, as_user(people["ann"]), password="first-password") == Refusal.WRONG_PASSWORD
    assert join(room, as_user(people["ann"]), password=new_password).status == "approved"
    assert services.room_password_regenerate(room=room, actor=people["staff"]) != new_password


def test_room_password_regenerate_errors(make_room, people):
    password_room = make_room(access_level=AccessLevel.PASSWORD)
    with pytest.raises(PermissionDenied):
        services.room_password_regenerate(room=password_room, actor=people["ann"])
    password_room.refresh_from_db()
    assert check_password(password_room.plain_password, password_room.password_hash)
    with pytest.raises(ValidationError) as excinfo:
        services.room_password_regenerate(room=make_room(), actor=people["owner"])
    assert error_fields(excinfo) == {"access_level"}


# --- room_access_update ----------------------------------------------------------------------


def test_access_update_to_password_generates_one(make_room, people, owner):
    room = make_room()
    room, password = services.room_access_update(room=room, actor=owner, access_level=AccessLevel.PASSWORD)
    assert password
    room.refresh_from_db()
    assert room.access_level == AccessLevel.PASSWORD
    assert check_password(password, room.password_hash)
    assert refusal_of(room, as_user(people["ann"])) == Refusal.PASSWORD_REQUIRED
    assert join(room, as_user(people["ann"]), password=password).status == "approved"


def test_access_update_to_password_with_a_given_one(make_room, owner):
    room, password = services.room_access_update(
        room=make_room(), actor=owner, access_level=AccessLevel.PASSWORD, password="chosen-one"
    )
    assert password == "chosen-one"
    assert check_password("chosen-one", Room.objects.get(pk=room.pk).password_hash)


def test_access_update_new_password_on_a_password_room(make_room, owner):
    room = make_room(access_level=AccessLevel.PASSWORD, password="old-password")
    room, password = services.room_access_update(room=room, actor=owner, password="new-password")
    assert password == "new-password"
    room.refresh_from_db()
    assert check_password("new-password", room.password_hash)
    assert not check_password("old-password", room.password_hash)


def test_access_update_keeps_the_password_when_level_stays(make_room, owner):
    room = make_room(access_level=AccessLevel.PASSWORD, password="keep-this")
    room, password = services.room_access_update(
        room=room, actor=owner, access_level=AccessLevel.PASSWORD, max_spectators=3
    )
    assert password is None
    room.refresh_from_db()
    assert check_password("keep-this", room.password_hash) and room.max_spectators == 3


@pytest.mark.parametrize("level", [AccessLevel.PUBLIC, AccessLevel.INVITE_ONLY, AccessLevel.PRIVATE])
def test_access_update_leaving_password_drops_the_hash(make_room, owner, level):
    room = make_room(access_level=AccessLevel.PASSWORD)
    room, password = services.room_access_update(room=room, actor=owner, access_level=level)
    assert password is None
    room.refresh_from_db()
    assert room.access_level == level
    assert room.password_hash == ""


def test_access_update_refuses_a_password_for_a_room_without_one(make_room, owner):
    room = make_room()
    with pytest.raises(ValidationError) as excinfo:
        services.room_access_update(room=room, actor=owner, password="not-here")
    assert error_fields(excinfo) == {"password"}
    with pytest.raises(ValidationError) as excinfo:
        services.room_access_update(room=room, actor=owner, access_level=AccessLevel.PASSWORD, password="abc")
    assert error_fields(excinfo) == {"password"}
    room.refresh_from_db()
    assert room.access_level == AccessLevel.PUBLIC and room.password_hash == ""


def test_access_update_turning_approval_off_approves_everyone_waiting(make_room, people, owner):
    room = make_room(require_approval=True)
    for visitor in (as_user(people["ann"]), as_user(people["bob"]), as_guest("guest")):
        assert join(room, visitor).status == "pending_approval"
    services.room_access_update(room=room, actor=owner, require_approval=False)
    requests = JoinRequest.objects.filter(room=room)
    assert requests.count() == 3
    assert set(requests.values_list("status", flat=True)) == {APPROVED}
    assert set(requests.values_list("decided_by", flat=True)) == {owner.pk}
    for visitor in (as_user(people["ann"]), as_user(people["bob"]), as_guest("guest")):
        assert join(room, visitor).status == "approved"


def test_access_update_turning_approval_on_leaves_present_spectators(make_room, people, owner):
    room = make_room()
    join(room, as_user(people["ann"]))
    services.room_access_update(room=room, actor=owner, require_approval=True)
    assert join(room, as_user(people["ann"])).status == "approved"
    assert join(room, as_user(people["bob"])).status == "pending_approval"


def test_access_update_other_fields(make_room, owner, people):
    room = make_room()
    room, _ = services.room_access_update(
        room=room,
        actor=people["staff"],
        max_spectators=4,
        auto_approve_timeout=15,
        allowed_users=["ann"],
        room_duration_hours=3,
    )
    room.refresh_from_db()
    assert (room.max_spectators, room.auto_approve_timeout) == (4, 15)
    assert list(room.allowed_users.all()) == [people["ann"]]
    assert room.expires_at == room.created_at + timedelta(hours=3)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"access_level": "secret"}, "access_level"),
        ({"allowed_users": ["nobody-here"]}, "allowed_users"),
        ({"room_duration_hours": 0}, "room_duration_hours"),
        ({"max_spectators": 0}, "max_spectators"),
    ],
)
def test_access_update_validation_errors(make_room, owner, kwargs, field):
    room = make_room()
    with pytest.raises(ValidationError) as excinfo:
        services.room_access_update(room=room, actor=owner, **kwargs)
    assert field in error_fields(excinfo)


def test_access_update_refuses_strangers_and_ended_rooms(make_room, people, owner):
    room = make_room()
    with pytest.raises(PermissionDenied):
        services.room_access_update(room=room, actor=people["ann"], access_level=AccessLevel.PRIVATE)
    assert Room.objects.get(pk=room.pk).access_level == AccessLevel.PUBLIC
    services.room_close(room=room, actor=owner)
    with pytest.raises(ValidationError) as excinfo:
        services.room_access_update(room=room, actor=owner, max_spectators=2)
    assert error_fields(excinfo) == {"room"}


# --- Joining: display names, presence, seats ----------------------------------------------------


def test_join_display_names(make_room, people):
    room = make_room()
    assert join(room, as_user(people["ann"])).spectator.display_name == "ann"
    assert join(room, as_user(people["bob"]), display_name="  Bob   the  Builder ").spectator.display_name == (
        "Bob the Builder"
    )
    guest = join(room, as_guest("g1")).spectator
    assert re.fullmatch(r"Guest-[0-9A-F]{4}", guest.display_name)
    assert guest.user is None and guest.anon_key == services.anon_key_for("g1")
    for bad in ("x" * 65, "bell\x07", "del\x7f"):
        with pytest.raises(ValidationError) as excinfo:
            join(room, as_guest("g2"), display_name=bad)
        assert error_fields(excinfo) == {"display_name"}
    assert access.current_spectator(room, as_guest("g2")) is None


def test_anon_key_is_a_hash_of_the_secret():
    key = services.anon_key_for("browser-secret")
    assert len(key) == 64 and "browser-secret" not in key
    assert key == services.anon_key_for("browser-secret") != services.anon_key_for("other-secret")
    assert services.anon_key_for("") == ""


def test_joining_again_keeps_the_same_seat(make_room, people):
    room = make_room()
    first = join(room, as_user(people["ann"])).spectator
    again = join(room, as_user(people["ann"])).spectator
    assert again.pk == first.pk
    assert present_count(room) == 1
    Spectator.objects.filter(pk=first.pk).update(last_seen_at=timezone.now() - timedelta(minutes=5))
    join(room, as_user(people["ann"]))
    assert Spectator.objects.get(pk=first.pk).last_seen_at > timezone.now() - timedelta(minutes=1)


def test_seat_limit(make_room, people, owner):
    room = make_room(max_spectators=1)
    ann = join(room, as_user(people["ann"])).spectator
    assert refusal_of(room, as_user(people["bob"])) == Refusal.FULL
    assert refusal_of(room, as_guest("guest")) == Refusal.FULL
    # Managers are admitted to a full room and take no seat.
    assert join(room, as_user(owner)).status == "approved"
    assert join(room, as_user(people["staff"])).status == "approved"
    assert access.seats_taken(room) == 1
    # A present spectator coming back is not refused.
    assert join(room, as_user(people["ann"])).spectator.pk == ann.pk
    services.room_leave(spectator=ann)
    assert join(room, as_user(people["bob"])).status == "approved"
    assert refusal_of(room, as_user(people["ann"])) == Refusal.FULL
    assert present_count(room) == 3


def test_managers_do_not_take_seats_before_others_arrive(make_room, people, owner):
    room = make_room(max_spectators=1)
    join(room, as_user(owner))
    join(room, as_user(people["staff"]))
    assert join(room, as_user(people["ann"])).status == "approved"


def test_room_leave_is_idempotent(make_room, people):
    room = make_room()
    spectator = join(room, as_user(people["ann"])).spectator
    left = services.room_leave(spectator=spectator)
    assert left.left_at is not None and left.left_reason == Spectator.LeftReason.LEFT
    again = services.room_leave(spectator=Spectator.objects.get(pk=spectator.pk), reason=Spectator.LeftReason.KICKED)
    assert again.left_at == left.left_at
    assert again.left_reason == Spectator.LeftReason.LEFT


# --- Approval ---------------------------------------------------------------------------------


def test_approval_workflow_approve(make_room, people, owner):
    room = make_room(require_approval=True)
    first = join(room, as_user(people["ann"]), message="let me in")
    assert first.status == "pending_approval" and first.spectator is None
    request = first.join_request
    assert (request.status, request.user, request.message, request.display_name) == (
        PENDING,
        people["ann"],
        "let me in",
        "ann",
    )
    # Asking again does not file a second request.
    again = join(room, as_user(people["ann"]))
    assert again.status == "pending_approval" and again.join_request.pk == request.pk
    assert JoinRequest.objects.filter(room=room).count() == 1
    assert present_count(room) == 0

    decided = services.join_request_decide(join_request=request, approver=owner, approved=True)
    assert decided.status == APPROVED and decided.decided_by == owner and decided.decided_at
    assert not decided.auto_approved
    result = join(room, as_user(people["ann"]))
    assert result.status == "approved" and result.spectator.is_present


def test_approval_workflow_deny(make_room, people):
    room = make_room(require_approval=True)
    request = join(room, as_user(people["ann"])).join_request
    services.join_request_decide(join_request=request, approver=people["staff"], approved=False)
    request.refresh_from_db()
    assert request.status == DENIED and request.decided_by == people["staff"]
    assert refusal_of(room, as_user(people["ann"])) == Refusal.DENIED
    assert JoinRequest.objects.filter(room=room).count() == 1


def test_anonymous_visitor_request_is_tied_to_their_key(make_room, owner):
    room = make_room(require_approval=True)
    request = join(room, as_guest("g1"), display_name="Guest One").join_request
    assert request.user is None and request.anon_key == services.anon_key_for("g1")
    assert join(room, as_guest("g2")).join_request.pk != request.pk
    services.join_request_decide(join_request=request, approver=owner, approved=True)
    assert join(room, as_guest("g1")).status == "approved"
    assert join(room, as_guest("g2")).status == "pending_approval"


def test_request_message_is_capped(make_room, people):
    room = make_room(require_approval=True)
    request = join(room, as_user(people["ann"]), message="m" * 900).join_request
    assert len(request.message) == 500


def test_join_request_decide_errors(make_room, people, owner):
    room = make_room(require_approval=True)
    request = join(room, as_user(people["ann"])).join_request
    with pytest.raises(PermissionDenied):
        services.join_request_decide(join_request=request, approver=people["bob"], approved=True)
    with pytest.raises(PermissionDenied):
        services.join_request_decide(join_request=request, approver=people["ann"], approved=True)
    assert JoinRequest.objects.get(pk=request.pk).status == PENDING
    services.join_request_decide(join_request=request, approver=owner, approved=True)
    for approved in (True, False):
        with pytest.raises(ValidationError) as excinfo:
            services.join_request_decide(join_request=request, approver=owner, approved=approved)
        assert error_fields(excinfo) == {"status"}
    assert JoinRequest.objects.get(pk=request.pk).status == APPROVED


def _age_request(request, seconds):
    JoinRequest.objects.filter(pk=request.pk).update(created_at=timezone.now() - timedelta(seconds=seconds))


def test_auto_approve_timeout_on_join(make_room, people):
    room = make_room(require_approval=True, auto_approve_timeout=60)
    request = join(room, as_user(people["ann"])).join_request
    _age_request(request, 30)
    assert join(room, as_user(people["ann"])).status == "pending_approval"
    _age_request(request, 61)
    result = join(room, as_user(people["ann"]))
    assert result.status == "approved" and result.spectator.is_present
    request.refresh_from_db()
    assert request.status == APPROVED and request.auto_approved and request.decided_by is None
    assert result.join_request.auto_approved


def test_join_requests_auto_approve_sweep(make_room, people, owner):
    timed = make_room(require_approval=True, auto_approve_timeout=60)
    never = make_room(require_approval=True)  # timeout 0: never
    due = join(timed, as_user(people["ann"])).join_request
    fresh = join(timed, as_user(people["bob"])).join_request
    stale_but_never = join(never, as_user(people["cat"])).join_request
    _age_request(due, 120)
    _age_request(stale_but_never, 10_000)

    assert services.join_requests_auto_approve() == 1
    assert services.join_requests_auto_approve() == 0
    due.refresh_from_db(), fresh.refresh_from_db(), stale_but_never.refresh_from_db()
    assert (due.status, due.auto_approved) == (APPROVED, True)
    assert fresh.status == PENDING and stale_but_never.status == PENDING
    assert join(timed, as_user(people["ann"])).status == "approved"
    # Time passing approves the fresh one too.
    assert services.join_requests_auto_approve(now=timezone.now() + timedelta(seconds=61)) == 1
    fresh.refresh_from_db()
    assert fresh.status == APPROVED and fresh.auto_approved


def test_auto_approve_never_touches_decided_or_ended_rooms(make_room, people, owner):
    room = make_room(require_approval=True, auto_approve_timeout=5)
    denied = join(room, as_user(people["ann"])).join_request
    services.join_request_decide(join_request=denied, approver=owner, approved=False)
    waiting = join(room, as_user(people["bob"])).join_request
    services.room_close(room=room, actor=owner)
    later = timezone.now() + timedelta(hours=1)
    assert services.join_requests_auto_approve(now=later) == 0
    denied.refresh_from_db(), waiting.refresh_from_db()
    assert denied.status == DENIED and waiting.status == EXPIRED


# --- Password lockout ------------------------------------------------------------------------


def test_lockout_after_too_many_wrong_passwords(make_room, people):
    limit = settings.SPECTATOR_PASSWORD_MAX_ATTEMPTS
    room = make_room(access_level=AccessLevel.PASSWORD, password="right-one")
    for _ in range(limit):
        assert refusal_of(room, as_user(people["ann"]), password="wrong", client="ip:1.2.3.4") == Refusal.WRONG_PASSWORD
    with pytest.raises(LockedOut) as excinfo:
        join(room, as_user(people["ann"]), password="right-one", client="ip:1.2.3.4")
    assert 0 < excinfo.value.retry_after <= settings.SPECTATOR_PASSWORD_LOCKOUT_SECONDS
    assert access.current_spectator(room, as_user(people["ann"])) is None
    # Another user from the same client is locked out too; another client is not.
    with pytest.raises(LockedOut):
        join(room, as_user(people["bob"]), password="right-one", client="ip:1.2.3.4")
    assert join(room, as_user(people["bob"]), password="right-one", client="ip:5.6.7.8").status == "approved"
    # The lockout is per room.
    other_room = make_room(access_level=AccessLevel.PASSWORD, password="right-one")
    assert join(other_room, as_user(people["ann"]), password="right-one", client="ip:1.2.3.4").status == "approved"


def test_right_password_before_the_limit_clears_the_count(make_room, people):
    limit = settings.SPECTATOR_PASSWORD_MAX_ATTEMPTS
    assert limit >= 2
    room = make_room(access_level=AccessLevel.PASSWORD, password="right-one")
    for user in (people["ann"], people["bob"], people["cat"]):
        for _ in range(limit - 1):
            assert refusal_of(room, as_user(user), password="wrong", client="shared") == Refusal.WRONG_PASSWORD
        assert join(room, as_user(user), password="right-one", client="shared").status == "approved"


def test_anonymous_lockout_counts_by_visitor_key_without_a_client(make_room):
    limit = settings.SPECTATOR_PASSWORD_MAX_ATTEMPTS
    room = make_room(access_level=AccessLevel.PASSWORD, password="right-one")
    for _ in range(limit):
        refusal_of(room, as_guest("g1"), password="nope")
    with pytest.raises(LockedOut):
        join(room, as_guest("g1"), password="right-one")
    assert join(room, as_guest("g2"), password="right-one").status == "approved"


def test_lockout_does_not_stop_visitors_who_need_no_password(make_room, people):
    limit = settings.SPECTATOR_PASSWORD_MAX_ATTEMPTS
    room = make_room(access_level=AccessLevel.PASSWORD, password="right-one", allowed_users=["cat"])
    for _ in range(limit):
        refusal_of(room, as_user(people["ann"]), password="wrong", client="shared")
    assert join(room, as_user(people["cat"]), password="anything", client="shared").status == "approved"
    assert join(room, as_user(people["owner"]), password="anything", client="shared").status == "approved"


def test_lockout_window_ends(make_room, people):
    room = make_room(access_level=AccessLevel.PASSWORD, password="right-one")
    for _ in range(settings.SPECTATOR_PASSWORD_MAX_ATTEMPTS):
        refusal_of(room, as_user(people["ann"]), password="wrong", client="c")
    with pytest.raises(LockedOut):
        join(room, as_user(people["ann"]), password="right-one", client="c")
    # Jump past the window by rewriting the stored deadline instead of sleeping.
    from django.core.cache import cache

    from rooms import lockout

    key = lockout._key(room.pk, "c")
    state = cache.get(key)
    cache.set(key, {**state, "until": time.time() - 1}, timeout=60)
    assert join(room, as_user(people["ann"]), password="right-one", client="c").status == "approved"


# --- Kick and ban ---------------------------------------------------------------------------


def test_kick_frees_the_seat_and_allows_rejoining(make_room, people, owner):
    room = make_room(max_spectators=1)
    spectator = join(room, as_user(people["ann"])).spectator
    kicked = services.spectator_kick(spectator=spectator, actor=owner)
    assert kicked.left_reason == Spectator.LeftReason.KICKED and kicked.left_at is not None
    assert access.current_spectator(room, as_user(people["ann"])) is None
    back = join(room, as_user(people["ann"]))
    assert back.status == "approved" and back.spectator.pk != spectator.pk


def test_kick_errors(make_room, people, owner):
    room = make_room()
    spectator = join(room, as_user(people["ann"])).spectator
    with pytest.raises(PermissionDenied):
        services.spectator_kick(spectator=spectator, actor=people["bob"])
    assert Spectator.objects.get(pk=spectator.pk).is_present
    for manager in (owner, people["staff"]):
        manager_seat = join(room, as_user(manager)).spectator
        with pytest.raises(ValidationError) as excinfo:
            services.spectator_kick(spectator=manager_seat, actor=owner)
        assert error_fields(excinfo) == {"spectator"}
        assert Spectator.objects.get(pk=manager_seat.pk).is_present


def test_ban_removes_a_present_spectator_until_lifted(make_room, people, owner):
    room = make_room()
    spectator = join(room, as_user(people["ann"])).spectator
    ban = services.ban_create(room=room, actor=owner, user=people["ann"], reason="spam")
    spectator.refresh_from_db()
    assert spectator.left_reason == Spectator.LeftReason.BANNED and not spectator.is_present
    assert (ban.user, ban.reason, ban.banned_by, ban.lifted_at) == (people["ann"], "spam", owner, None)
    assert refusal_of(room, as_user(people["ann"])) == Refusal.BANNED
    assert join(room, as_user(people["bob"])).status == "approved"
    # Banning again returns the same active ban.
    assert services.ban_create(room=room, actor=owner, user=people["ann"]).pk == ban.pk

    lifted = services.ban_lift(ban=ban, actor=people["staff"])
    assert lifted.lifted_at is not None and lifted.lifted_by == people["staff"]
    assert join(room, as_user(people["ann"])).status == "approved"
    # Lifting is idempotent.
    assert services.ban_lift(ban=ban, actor=owner).lifted_at == lifted.lifted_at
    # A new ban after a lift is a new row.
    assert services.ban_create(room=room, actor=owner, user=people["ann"]).pk != ban.pk


def test_ban_by_spectator_and_anonymous_ban(make_room, owner):
    room = make_room()
    guest = join(room, as_guest("g1"), display_name="Troll").spectator
    ban = services.ban_create(room=room, actor=owner, spectator=guest)
    assert ban.user is None and ban.anon_key == guest.anon_key and ban.display_name == "Troll"
    guest.refresh_from_db()
    assert guest.left_reason == Spectator.LeftReason.BANNED
    assert refusal_of(room, as_guest("g1")) == Refusal.BANNED
    assert join(room, as_guest("g2")).status == "approved"
    services.ban_lift(ban=ban, actor=owner)
    assert join(room, as_guest("g1")).status == "approved"


def test_ban_denies_a_pending_request(make_room, people, owner):
    room = make_room(require_approval=True)
    request = join(room, as_user(people["ann"])).join_request
    services.ban_create(room=room, actor=owner, user=people["ann"])
    request.refresh_from_db()
    assert request.status == DENIED and request.decided_by == owner
    assert refusal_of(room, as_user(people["ann"])) == Refusal.BANNED


def test_ban_of_someone_not_present(make_room, people, owner):
    room = make_room(access_level=AccessLevel.PRIVATE, allowed_users=["ann"])
    services.ban_create(room=room, actor=owner, user=people["ann"])
    assert refusal_of(room, as_user(people["ann"])) == Refusal.BANNED
    assert not Spectator.objects.filter(room=room).exists()


def test_ban_errors(make_room, people, owner):
    room = make_room()
    with pytest.raises(PermissionDenied):
        services.ban_create(room=room, actor=people["bob"], user=people["ann"])
    for manager in (owner, people["staff"]):
        with pytest.raises(ValidationError) as excinfo:
            services.ban_create(room=room, actor=owner, user=manager)
        assert error_fields(excinfo) == {"username"}
        seat = join(room, as_user(manager)).spectator
        with pytest.raises(ValidationError):
            services.ban_create(room=room, actor=people["staff"], spectator=seat)
        assert Spectator.objects.get(pk=seat.pk).is_present
    with pytest.raises(ValidationError) as excinfo:
        services.ban_create(room=room, actor=owner)
    assert error_fields(excinfo) == {"username"}
    assert not Ban.objects.exists()
    ban = services.ban_create(room=room, actor=owner, user=people["ann"])
    with pytest.raises(PermissionDenied):
        services.ban_lift(ban=ban, actor=people["ann"])
    assert Ban.objects.get(pk=ban.pk).lifted_at is None


def test_blocked_users_at_creation_are_banned(make_room, people):
    room = make_room(blocked_users=["ann"])
    assert refusal_of(room, as_user(people["ann"])) == Refusal.BANNED
    services.ban_lift(ban=Ban.objects.get(room=room, user=people["ann"]), actor=people["owner"])
    assert join(room, as_user(people["ann"])).status == "approved"


# --- Invitations ---------------------------------------------------------------------------


def test_invitation_admits_to_invite_only_and_revoke_undoes_it(make_room, people, owner):
    room = make_room(access_level=AccessLevel.INVITE_ONLY)
    assert refusal_of(room, as_user(people["ann"])) == Refusal.NOT_INVITED
    assert refusal_of(room, as_guest("g")) == Refusal.SIGN_IN_REQUIRED

    invitation, created = services.invitation_create(room=room, username="ann", actor=owner)
    assert created and invitation.user == people["ann"] and invitation.invited_by == owner
    assert services.invitation_create(room=room, username="ann", actor=people["staff"]) == (invitation, False)
    assert join(room, as_user(people["ann"])).status == "approved"

    bob_invitation, _ = services.invitation_create(room=room, username="bob", actor=owner)
    revoked = services.invitation_revoke(invitation=bob_invitation, actor=owner)
    assert revoked.revoked_at is not None
    assert refusal_of(room, as_user(people["bob"])) == Refusal.NOT_INVITED
    assert services.invitation_revoke(invitation=bob_invitation, actor=owner).revoked_at == revoked.revoked_at
    # Revoking ann's invitation does not remove her seat, but she is not admitted again.
    services.invitation_revoke(invitation=invitation, actor=owner)
    assert access.current_spectator(room, as_user(people["ann"])) is not None
    assert refusal_of(room, as_user(people["ann"])) == Refusal.NOT_INVITED
    # A fresh invitation after a revoke is a new one.
    again, created = services.invitation_create(room=room, username="bob", actor=owner)
    assert created and again.pk != bob_invitation.pk
    assert join(room, as_user(people["bob"])).status == "approved"


def test_invitation_admits_to_private_and_password_rooms(make_room, people, owner):
    private = make_room(access_level=AccessLevel.PRIVATE)
    assert refusal_of(private, as_user(people["ann"])) == Refusal.NOT_FOUND
    services.invitation_create(room=private, username="ann", actor=owner)
    assert join(private, as_user(people["ann"])).status == "approved"
    password_room = make_room(access_level=AccessLevel.PASSWORD, require_approval=True)
    services.invitation_create(room=password_room, username="ann", actor=owner)
    assert join(password_room, as_user(people["ann"])).status == "approved"  # no password, no approval


def test_invitation_errors(make_room, people, owner):
    room = make_room(access_level=AccessLevel.INVITE_ONLY)
    with pytest.raises(PermissionDenied):
        services.invitation_create(room=room, username="bob", actor=people["ann"])
    with pytest.raises(ValidationError) as excinfo:
        services.invitation_create(room=room, username="nobody-here", actor=owner)
    assert error_fields(excinfo) == {"username"}
    assert not Invitation.objects.exists()
    invitation, _ = services.invitation_create(room=room, username="bob", actor=owner)
    with pytest.raises(PermissionDenied):
        services.invitation_revoke(invitation=invitation, actor=people["bob"])
    assert Invitation.objects.get(pk=invitation.pk).revoked_at is None


# --- Reconnecting and presence ---------------------------------------------------------------


def reconnect_refusal(room, spectator) -> Refusal:
    with pytest.raises(AccessRefused) as excinfo:
        services.room_reconnect(room=room, spectator_id=spectator.pk)
    return excinfo.value.refusal


def test_reconnect_of_a_present_spectator_keeps_the_seat(make_room, people):
    room = make_room()
    seat = join(room, as_user(people["ann"])).spectator
    Spectator.objects.filter(pk=seat.pk).update(last_seen_at=timezone.now() - timedelta(minutes=5))
    again = services.room_reconnect(room=room, spectator_id=seat.pk)
    assert again.pk == seat.pk
    assert Spectator.objects.get(pk=seat.pk).last_seen_at > timezone.now() - timedelta(minutes=1)
    assert present_count(room) == 1


@pytest.mark.parametrize("reason", [Spectator.LeftReason.LEFT, Spectator.LeftReason.TIMEOUT])
def test_reconnect_after_leaving_takes_a_new_seat_without_password_or_approval(make_room, people, owner, reason):
    room = make_room(access_level=AccessLevel.PASSWORD, password="right-one")
    seat = join(room, as_guest("g"), password="right-one", display_name="Guest").spectator
    services.room_leave(spectator=seat, reason=reason)
    services.room_access_update(room=room, actor=owner, require_approval=True)
    again = services.room_reconnect(room=room, spectator_id=seat.pk)
    assert again.pk != seat.pk and again.is_present
    assert (again.anon_key, again.display_name, again.user) == (seat.anon_key, "Guest", None)


@pytest.mark.parametrize(
    "remove, refusal",
    [("kick", Refusal.DENIED), ("ban", Refusal.BANNED), ("close", Refusal.CLOSED), ("expire", Refusal.EXPIRED)],
)
def test_reconnect_refuses_removed_spectators_and_closed_rooms(make_room, people, owner, remove, refusal):
    room = make_room()
    seat = join(room, as_user(people["ann"])).spectator
    if remove == "kick":
        services.spectator_kick(spectator=seat, actor=owner)
    elif remove == "ban":
        services.ban_create(room=room, actor=owner, user=people["ann"])
    elif remove == "close":
        services.room_close(room=room, actor=owner)
    else:
        Room.objects.filter(pk=room.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
        assert services.rooms_expire() == 1
    # Close code 4410 (DESIGN.md section 4) depends on room_closed / room_expired here.
    assert reconnect_refusal(room, seat) == refusal
    assert present_count(room) == 0


def test_reconnect_rechecks_bans_invitations_and_seats(make_room, people, owner):
    room = make_room(access_level=AccessLevel.INVITE_ONLY, max_spectators=1)
    invitation, _ = services.invitation_create(room=room, username="ann", actor=owner)
    services.invitation_create(room=room, username="bob", actor=owner)
    ann = join(room, as_user(people["ann"])).spectator
    services.room_leave(spectator=ann)
    bob = join(room, as_user(people["bob"])).spectator
    assert reconnect_refusal(room, ann) == Refusal.FULL
    services.room_leave(spectator=bob)
    services.invitation_revoke(invitation=invitation, actor=owner)
    assert reconnect_refusal(room, ann) == Refusal.NOT_INVITED
    services.ban_create(room=room, actor=owner, user=people["bob"])
    assert reconnect_refusal(room, bob) == Refusal.BANNED


def test_reconnect_with_a_spectator_of_another_room(make_room, people):
    room, other = make_room(), make_room()
    seat = join(other, as_user(people["ann"])).spectator
    assert reconnect_refusal(room, seat) == Refusal.NOT_FOUND


def test_spectators_touch(make_room, people):
    room = make_room()
    present = join(room, as_user(people["ann"])).spectator
    gone = services.room_leave(spectator=join(room, as_user(people["bob"])).spectator)
    old = timezone.now() - timedelta(minutes=10)
    Spectator.objects.update(last_seen_at=old)
    assert services.spectators_touch(spectator_ids=[present.pk, gone.pk]) == 1
    assert services.spectators_touch(spectator_ids=[]) == 0
    assert Spectator.objects.get(pk=present.pk).last_seen_at > old
    assert Spectator.objects.get(pk=gone.pk).last_seen_at == old


def test_spectators_expire_stale_frees_seats_of_the_unseen(make_room, people):
    room = make_room(max_spectators=2)
    stale = join(room, as_user(people["ann"])).spectator
    fresh = join(room, as_user(people["bob"])).spectator
    timeout = settings.SPECTATOR_PRESENCE_TIMEOUT
    Spectator.objects.filter(pk=stale.pk).update(last_seen_at=timezone.now() - timedelta(seconds=timeout + 5))
    assert refusal_of(room, as_user(people["cat"])) == Refusal.FULL

    assert services.spectators_expire_stale() == 1
    assert services.spectators_expire_stale() == 0
    stale.refresh_from_db(), fresh.refresh_from_db()
    assert stale.left_reason == Spectator.LeftReason.TIMEOUT and fresh.is_present
    assert join(room, as_user(people["cat"])).status == "approved"
    assert services.spectators_expire_stale(now=timezone.now() + timedelta(seconds=timeout + 60)) == 2


# --- Closing and expiry ---------------------------------------------------------------------


def test_room_close(make_room, people, owner):
    room = make_room(require_approval=True, allowed_users=["ann"])
    ann = join(room, as_user(people["ann"])).spectator
    owner_seat = join(room, as_user(owner)).spectator
    request = join(room, as_user(people["bob"])).join_request

    closed = services.room_close(room=room, actor=owner)
    assert closed.status == Room.Status.CLOSED and closed.closed_at is not None
    for seat in (ann, owner_seat):
        seat.refresh_from_db()
        assert seat.left_reason == Spectator.LeftReason.CLOSED and not seat.is_present
    request.refresh_from_db()
    assert request.status == EXPIRED
    assert refusal_of(room, as_user(people["ann"])) == Refusal.CLOSED
    assert refusal_of(room, as_user(owner)) == Refusal.CLOSED

    again = services.room_close(room=room, actor=people["staff"])
    assert again.status == Room.Status.CLOSED and again.closed_at == closed.closed_at


def test_room_close_refuses_non_managers(make_room, people):
    room = make_room(access_level=AccessLevel.PRIVATE, allowed_users=["ann"])
    join(room, as_user(people["ann"]))
    for user in (people["ann"], people["bob"]):
        with pytest.raises(PermissionDenied):
            services.room_close(room=room, actor=user)
    room.refresh_from_db()
    assert room.status == Room.Status.ACTIVE and present_count(room) == 1


def test_rooms_expire(make_room, people, owner):
    overdue = [make_room(require_approval=True, allowed_users=["ann"]) for _ in range(2)]
    fresh = make_room()
    closed = make_room()
    services.room_close(room=closed, actor=owner)
    seats = [join(room, as_user(people["ann"])).spectator for room in overdue]
    requests = [join(room, as_user(people["bob"])).join_request for room in overdue]
    fresh_seat = join(fresh, as_user(people["ann"])).spectator
    past = timezone.now() - timedelta(seconds=1)
    Room.objects.filter(pk__in=[r.pk for r in [*overdue, closed]]).update(expires_at=past)

    assert services.rooms_expire() == 2
    for room in overdue:
        room.refresh_from_db()
        assert room.status == Room.Status.EXPIRED and room.closed_at is not None
        assert refusal_of(room, as_user(people["ann"])) == Refusal.EXPIRED
    for seat in seats:
        seat.refresh_from_db()
        assert seat.left_reason == Spectator.LeftReason.EXPIRED
    for request in requests:
        request.refresh_from_db()
        assert request.status == EXPIRED
    fresh.refresh_from_db(), closed.refresh_from_db(), fresh_seat.refresh_from_db()
    assert fresh.status == Room.Status.ACTIVE and fresh_seat.is_present
    assert closed.status == Room.Status.CLOSED

    assert services.rooms_expire() == 0
    assert services.rooms_expire(now=fresh.expires_at + timedelta(seconds=1)) == 1
    fresh.refresh_from_db()
    assert fresh.status == Room.Status.EXPIRED


def test_expired_but_unswept_room_already_refuses(make_room, people):
    room = make_room()
    Room.objects.filter(pk=room.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    room.refresh_from_db()
    assert room.status == Room.Status.ACTIVE
    assert refusal_of(room, as_user(people["ann"])) == Refusal.EXPIRED


# --- Training sessions ------------------------------------------------------------------------


def test_training_session_create_is_idempotent_for_its_owner(owner, training_session, make_user):
    again, created = training_session_create(owner=owner, id=training_session.id, name="ignored")
    assert not created and again.pk == training_session.pk
    assert TrainingSession.objects.get(pk=training_session.pk).name == "CartPole DQN"
    with pytest.raises(ValidationError) as excinfo:
        training_session_create(owner=make_user("thief"), id=training_session.id)
    assert error_fields(excinfo) == {"id"}
    assert TrainingSession.objects.get(pk=training_session.pk).owner == owner


def test_training_session_create_generates_ids_and_validates(owner):
    session, created = training_session_create(owner=owner, name="Lunar Lander PPO!")
    assert created and session.id.startswith("lunar-lander-ppo-")
    unnamed, _ = training_session_create(owner=owner)
    assert unnamed.id.startswith("session-") and unnamed.id != session.id
    with pytest.raises(ValidationError) as excinfo:
        training_session_create(owner=owner, id="-bad id-")
    assert "id" in error_fields(excinfo)


def test_training_session_close_closes_its_live_rooms(make_room, people, owner, training_session, make_user):
    live = make_room()
    seat = join(live, as_user(people["ann"])).spectator
    already = make_room()
    services.room_close(room=already, actor=owner)
    already.refresh_from_db()
    other_session, _ = training_session_create(owner=owner, id="other-run")
    unrelated = make_room(training_session=other_session)

    closed = training_session_close(training_session=training_session, actor=owner)
    assert closed.status == TrainingSession.Status.CLOSED
    assert TrainingSession.objects.get(pk=training_session.pk).status == TrainingSession.Status.CLOSED
    live.refresh_from_db(), seat.refresh_from_db()
    assert live.status == Room.Status.CLOSED and seat.left_reason == Spectator.LeftReason.CLOSED
    assert Room.objects.get(pk=already.pk).closed_at == already.closed_at
    assert Room.objects.get(pk=unrelated.pk).status == Room.Status.ACTIVE


# --- Events: builders and publishing --------------------------------------------------------


def _is_builder(name, fn) -> bool:
    return (
        fn.__module__ == events.__name__
        and not name.startswith(("_", "publish"))
        and not name.endswith("_name")
        and name != "room_event"  # the channel-layer envelope, checked on its own below
    )


def test_every_event_builder_round_trips_through_json(make_room, people, owner):
    room = make_room(require_approval=True, allowed_users=["ann"])
    user_seat = join(room, as_user(people["ann"])).spectator
    guest_seat = services.room_leave(spectator=join(make_room(), as_guest("g")).spectator)
    kicked = services.spectator_kick(spectator=join(make_room(), as_guest("k")).spectator, actor=owner)
    user_request = join(room, as_user(people["bob"]), message="hi").join_request
    guest_request = services.join_request_decide(
        join_request=join(room, as_guest("g2")).join_request, approver=owner, approved=False
    )
    closed_room = services.room_close(room=make_room(), actor=owner)
    samples = {
        "spectator": [user_seat, guest_seat, kicked],
        "join_request": [user_request, guest_request],
        "room": [room, closed_room],
        "room_id": [room.pk, str(closed_room.pk)],
    }
    builders = {name: fn for name, fn in inspect.getmembers(events, inspect.isfunction) if _is_builder(name, fn)}
    assert {"spectator_list", "spectator_removed", "room_closed", "join_request_created"} <= set(builders)
    for name, builder in builders.items():
        required = [
            p.name for p in inspect.signature(builder).parameters.values() if p.default is inspect.Parameter.empty
        ]
        assert len(required) == 1 and required[0] in samples, f"no sample for {name}{required}; add one here"
        for sample in samples[required[0]]:
            message = builder(sample)
            assert json.loads(json.dumps(message)) == message, name
            if not name.endswith("_entry"):
                assert isinstance(message["type"], str) and message["type"], name

    envelope = events.room_event(room.pk, events.room_closed(closed_room), close_code=events.CLOSE_GONE)
    assert json.loads(json.dumps(envelope)) == envelope
    assert json.loads(envelope["text"]) == events.room_closed(closed_room)
    assert envelope["type"] == "room.event" and envelope["room_id"] == str(room.pk)


def test_spectator_list_counts_present_spectators(make_room, people):
    room = make_room()
    join(room, as_user(people["ann"]))
    services.room_leave(spectator=join(room, as_user(people["bob"])).spectator)
    join(room, as_guest("g"), display_name="Guest")
    message = events.spectator_list(room.pk)
    assert message["count"] == 2
    assert [(e["display_name"], e["username"]) for e in message["spectators"]] == [("ann", "ann"), ("Guest", None)]


def test_group_names_use_ids_only():
    import uuid

    room_id = uuid.uuid4()
    assert re.fullmatch(r"[A-Za-z0-9\-_.]{1,99}", events.room_group_name(room_id))
    assert events.room_group_name(str(room_id)) == events.room_group_name(room_id)
    assert events.room_group_name(uuid.uuid4()) != events.room_group_name(room_id)


def test_writes_register_publishing_for_commit_only(make_room, people, django_capture_on_commit_callbacks):
    room = make_room()
    with django_capture_on_commit_callbacks() as callbacks:
        join(room, as_user(people["ann"]))
    assert len(callbacks) == 1
    with django_capture_on_commit_callbacks() as callbacks:
        with contextlib.suppress(RuntimeError), transaction.atomic():
            join(room, as_user(people["bob"]))
            raise RuntimeError("roll back")
    assert callbacks == []
    assert access.current_spectator(room, as_user(people["bob"])) is None
    with django_capture_on_commit_callbacks() as callbacks:
        join(room, as_user(people["ann"]))
    assert callbacks == []  # already present: nothing changed, nothing to tell


def _listen_while(room, writes, count):
    """Join the room's group, run ``writes`` (committing for real), then receive ``count`` messages."""

    async def scenario():
        layer = get_channel_layer()
        channel = await layer.new_channel()
        group = events.room_group_name(room.pk)
        await layer.group_add(group, channel)
        try:
            result = await sync_to_async(writes)()
            messages = [await layer.receive(channel) for _ in range(count)]
        finally:
            await layer.group_discard(group, channel)
        return result, messages

    return async_to_sync(scenario)()


@pytest.mark.django_db(transaction=True)
def test_publish_after_commit_reaches_the_channel_layer_and_rollbacks_send_nothing(make_room, people, owner):
    room = make_room(require_approval=True)

    def writes():
        join(room, as_user(people["ann"]))  # a join request: for managers only
        with contextlib.suppress(RuntimeError), transaction.atomic():
            join(room, as_user(owner))
            raise RuntimeError("roll back: nothing may be published")
        services.room_close(room=room, actor=owner)

    _, (request_event, closed_event) = _listen_while(room, writes, 2)

    room.refresh_from_db()
    request = JoinRequest.objects.get(room=room, user=people["ann"])
    assert request_event["type"] == "room.event"
    assert request_event["audience"] == events.AUDIENCE_MANAGERS
    assert json.loads(request_event["text"]) == {
        "type": "join_request",
        "request": {**events.join_request_entry(request), "status": PENDING},
    }
    # The next message is the close: the rolled-back join published nothing.
    assert closed_event["audience"] == events.AUDIENCE_ALL
    assert closed_event["close_code"] == events.CLOSE_GONE
    assert json.loads(closed_event["text"]) == events.room_closed(room)
    assert not Spectator.objects.filter(room=room).exists()


@pytest.mark.django_db(transaction=True)
def test_publish_sends_spectator_events_in_order(make_room, people, owner):
    room = make_room()

    def writes():
        spectator = join(room, as_user(people["ann"])).spectator
        services.spectator_kick(spectator=spectator, actor=owner)
        return Spectator.objects.get(pk=spectator.pk)

    spectator, messages = _listen_while(room, writes, 3)

    payloads = [json.loads(m["text"]) for m in messages]
    assert [p["type"] for p in payloads] == ["spectator_list", "spectator_list", "room_closed"]
    assert [p["count"] for p in payloads[:2]] == [1, 0]
    assert payloads[0]["spectators"][0]["spectator_id"] == spectator.pk
    assert payloads[2] == events.spectator_removed(spectator)
    assert payloads[2]["reason"] == Spectator.LeftReason.KICKED
    removal = messages[2]
    assert (removal["audience"], removal["spectator_id"], removal["close_code"]) == (
        events.AUDIENCE_SPECTATOR,
        spectator.pk,
        events.CLOSE_REFUSED,
    )
