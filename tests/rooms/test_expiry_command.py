"""The expiry sweep: the ``expire_rooms`` command, auto-approval and the in-process sweeper."""

import threading
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from rooms import services, sweeper
from rooms.access import Visitor
from rooms.models import JoinRequest, Room, Spectator

pytestmark = pytest.mark.django_db


def expire(room, *, ago=timedelta(minutes=1)) -> None:
    """Move a room's expiry into the past, as time passing would."""
    Room.objects.filter(pk=room.pk).update(expires_at=timezone.now() - ago)


def expire_rooms() -> str:
    out = StringIO()
    call_command("expire_rooms", stdout=out)
    return out.getvalue().strip()


def join(room, user, **kwargs):
    return services.room_join(room=room, visitor=Visitor(user=user), **kwargs)


def test_command_expires_rooms_past_their_expiry(make_room, make_user):
    stale, gated = make_room(), make_room(require_approval=True)
    fresh = make_room()
    seated = [join(stale, make_user(f"viewer{i}")).spectator for i in range(2)]
    already_left = services.room_leave(spectator=join(stale, make_user("early")).spectator)
    waiting = join(gated, make_user("waiter")).join_request
    staying = join(fresh, make_user("stayer")).spectator
    fresh_waiting_room = make_room(require_approval=True)
    fresh_waiting = join(fresh_waiting_room, make_user("patient")).join_request
    expire(stale)
    expire(gated, ago=timedelta(seconds=1))

    assert expire_rooms() == "2 room(s) expired, 0 request(s) auto-approved, 0 stale seat(s) freed."

    for room in (stale, gated):
        room.refresh_from_db()
        assert room.status == Room.Status.EXPIRED
        assert room.closed_at is not None
    for spectator in seated:
        spectator.refresh_from_db()
        assert spectator.left_at is not None
        assert spectator.left_reason == Spectator.LeftReason.EXPIRED
    already_left.refresh_from_db()
    assert already_left.left_reason == Spectator.LeftReason.LEFT
    waiting.refresh_from_db()
    assert waiting.status == JoinRequest.Status.EXPIRED
    assert waiting.decided_at is not None

    fresh.refresh_from_db()
    assert fresh.status == Room.Status.ACTIVE
    staying.refresh_from_db()
    assert staying.left_at is None
    fresh_waiting.refresh_from_db()
    assert fresh_waiting.status == JoinRequest.Status.PENDING


def test_command_twice_changes_nothing_more(make_room, make_user):
    room = make_room()
    spectator = join(room, make_user("viewer")).spectator
    expire(room)
    assert expire_rooms() == "1 room(s) expired, 0 request(s) auto-approved, 0 stale seat(s) freed."
    room.refresh_from_db()
    spectator.refresh_from_db()
    first_closed_at, first_left_at = room.closed_at, spectator.left_at

    assert expire_rooms() == "0 room(s) expired, 0 request(s) auto-approved, 0 stale seat(s) freed."

    room.refresh_from_db()
    spectator.refresh_from_db()
    assert (room.status, room.closed_at) == (Room.Status.EXPIRED, first_closed_at)
    assert spectator.left_at == first_left_at


def test_command_with_nothing_to_do(make_room):
    make_room()
    assert expire_rooms() == "0 room(s) expired, 0 request(s) auto-approved, 0 stale seat(s) freed."


def test_closed_rooms_past_expiry_stay_closed(make_room, owner):
    room = make_room()
    services.room_close(room=room, actor=owner)
    expire(room)
    assert expire_rooms().startswith("0 room(s) expired")
    room.refresh_from_db()
    assert room.status == Room.Status.CLOSED


def test_sweep_auto_approves_due_requests_only(make_room, make_user):
    room = make_room(require_approval=True, auto_approve_timeout=60)
    never = make_room(require_approval=True)  # timeout 0: nobody decided means nobody gets in
    due_user = make_user("due")
    due = join(room, due_user).join_request
    not_yet = join(room, make_user("recent")).join_request
    manual = join(never, make_user("manual")).join_request
    JoinRequest.objects.filter(pk__in=[due.pk, manual.pk]).update(created_at=timezone.now() - timedelta(seconds=61))

    assert expire_rooms() == "0 room(s) expired, 1 request(s) auto-approved, 0 stale seat(s) freed."

    due.refresh_from_db()
    assert (due.status, due.auto_approved, due.decided_by) == (JoinRequest.Status.APPROVED, True, None)
    not_yet.refresh_from_db()
    assert not_yet.status == JoinRequest.Status.PENDING
    manual.refresh_from_db()
    assert manual.status == JoinRequest.Status.PENDING
    assert join(room, due_user).status == "approved"
    assert expire_rooms() == "0 room(s) expired, 0 request(s) auto-approved, 0 stale seat(s) freed."


def test_sweep_expires_before_it_auto_approves(make_room, make_user):
    room = make_room(require_approval=True, auto_approve_timeout=60)
    waiting = join(room, make_user("late")).join_request
    JoinRequest.objects.filter(pk=waiting.pk).update(created_at=timezone.now() - timedelta(seconds=120))
    expire(room)

    assert expire_rooms() == "1 room(s) expired, 0 request(s) auto-approved, 0 stale seat(s) freed."

    waiting.refresh_from_db()
    assert waiting.status == JoinRequest.Status.EXPIRED


def test_sweep_once_reports_counts(make_room):
    expire(make_room())
    assert sweeper.sweep_once() == {
        "rooms_expired": 1,
        "requests_auto_approved": 0,
        "spectators_timed_out": 0,
        "recordings_pruned": 0,
    }


@pytest.mark.parametrize("swept", [False, True], ids=["before-sweep", "after-sweep"])
def test_joining_an_expired_room_is_refused_with_410(make_room, make_user, api_client, swept):
    room = make_room()
    expire(room)
    if swept:
        expire_rooms()

    for client in (api_client(), api_client(make_user("member"))):
        response = client.post(f"/api/v1/rooms/{room.code}/join/", {"display_name": "Late"}, format="json")
        assert response.status_code == 410, response.json()
        assert response.json()["error"] == "room_expired"
    assert not Spectator.objects.filter(room=room).exists()


def test_expired_room_refuses_even_its_owner(make_room, owner, api_client):
    room = make_room()
    expire(room)
    response = api_client(owner).post(f"/api/v1/rooms/{room.code}/join/", {}, format="json")
    assert response.status_code == 410
    assert response.json()["error"] == "room_expired"


def test_sweeper_is_off_in_tests(settings):
    assert settings.SPECTATOR_SWEEP_INTERVAL == 0, "run the suite with ./test, which sets SPECTATOR_SWEEP_INTERVAL=0"
    assert sweeper.sweeper_start() is False


@pytest.mark.parametrize("interval", [0, -5])
def test_sweeper_start_declines_without_a_positive_interval(settings, monkeypatch, interval):
    monkeypatch.setattr(sweeper, "_started", threading.Event())
    settings.SPECTATOR_SWEEP_INTERVAL = interval
    assert sweeper.sweeper_start() is False
    assert not sweeper._started.is_set()


def test_sweeper_starts_once_per_process(settings, monkeypatch):
    started, stop = threading.Event(), threading.Event()
    monkeypatch.setattr(sweeper, "_started", started)
    monkeypatch.setattr(sweeper, "_stop", stop)
    settings.SPECTATOR_SWEEP_INTERVAL = 3600
    try:
        assert sweeper.sweeper_start() is True
        assert sweeper.sweeper_start() is False
        (thread,) = [t for t in threading.enumerate() if t.name == "spectator-sweeper"]
        assert thread.daemon
    finally:
        stop.set()
    thread.join(timeout=5)
    assert not thread.is_alive()


def test_one_process_a_round_takes_the_sweep_turn():
    # Each server process asks before sweeping; the shared cache gives the round to one.
    assert sweeper._turn_to_sweep(30) is True
    assert sweeper._turn_to_sweep(30) is False
    assert sweeper._turn_to_sweep(30) is False


def test_without_the_cache_every_process_sweeps(monkeypatch):
    def unreachable(*args, **kwargs):
        raise ConnectionError("cache down")

    monkeypatch.setattr(sweeper.cache, "add", unreachable)
    assert sweeper._turn_to_sweep(30) is True
