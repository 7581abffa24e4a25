"""Concurrent writes: the last seat and a custom code each go to exactly one caller.

Threads start together on a ``threading.Barrier`` and each uses its own database
connection, closed at the end. ``room_join`` takes a row lock on the room (PostgreSQL) or
the write lock at BEGIN (SQLite's IMMEDIATE transactions), so the seat count it reads cannot
be stale.
"""

import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from rooms import services
from rooms.access import AccessRefused, Refusal, Visitor
from rooms.models import Room, Spectator


def run_together(calls):
    """Run each callable in its own thread, all released at once; return results in order.

    A result is the callable's return value or the exception it raised.
    """
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def worker(index, call):
        try:
            barrier.wait(timeout=30)
            results[index] = call()
        except Exception as exc:  # noqa: BLE001 - the caller inspects what each thread got
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a join hung"
    return results


def join_call(room, user):
    return lambda: services.room_join(room=room, visitor=Visitor(user=user)).status


def outcome(result):
    if isinstance(result, AccessRefused):
        return result.refusal
    if isinstance(result, Exception):
        raise result
    return result


def last_seat_race(make_room, make_user, *, max_spectators, contenders):
    room = make_room(max_spectators=max_spectators)
    for n in range(max_spectators - 1):
        services.room_join(room=room, visitor=Visitor(user=make_user(f"seated{n}")))
    users = [make_user(f"contender{n}") for n in range(contenders)]

    outcomes = [outcome(r) for r in run_together([join_call(room, user) for user in users])]

    assert outcomes.count("approved") == 1, outcomes
    assert outcomes.count(Refusal.FULL) == contenders - 1, outcomes
    assert Spectator.objects.filter(room=room, left_at__isnull=True).count() == max_spectators
    winner = users[outcomes.index("approved")]
    assert Spectator.objects.get(room=room, left_at__isnull=True, user=winner)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("contenders", [2, 8])
@pytest.mark.parametrize("max_spectators", [1, 3])
def test_last_seat_race_on_postgres(make_room, make_user, max_spectators, contenders):
    last_seat_race(make_room, make_user, max_spectators=max_spectators, contenders=contenders)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("contenders", [2, 6])
def test_last_seat_race_on_any_database(make_room, make_user, contenders):
    last_seat_race(make_room, make_user, max_spectators=2, contenders=contenders)


@pytest.mark.django_db(transaction=True)
def test_managers_are_admitted_while_others_race_for_the_last_seat(make_room, make_user, owner):
    room = make_room(max_spectators=1)
    staff = make_user("moderator", staff=True)
    users = [make_user(f"contender{n}") for n in range(3)]

    results = run_together([join_call(room, user) for user in [owner, staff, *users]])
    outcomes = [outcome(r) for r in results]

    assert outcomes[:2] == ["approved", "approved"]
    assert sorted(outcomes[2:], key=str) == sorted(["approved", Refusal.FULL, Refusal.FULL], key=str)
    assert Spectator.objects.filter(room=room, left_at__isnull=True).count() == 3


@pytest.mark.django_db(transaction=True)
def test_custom_code_race_has_one_winner(training_session, owner):
    def create():
        room, _ = services.room_create(creator=owner, training_session=training_session, custom_code="RACE42")
        return room.pk

    results = run_together([create for _ in range(4)])

    winners = [r for r in results if not isinstance(r, Exception)]
    losers = [r for r in results if isinstance(r, Exception)]
    assert len(winners) == 1, results
    assert all(isinstance(r, ValidationError) and set(r.message_dict) == {"custom_room_code"} for r in losers), results
    assert list(Room.objects.filter(code="RACE42").values_list("pk", flat=True)) == winners
