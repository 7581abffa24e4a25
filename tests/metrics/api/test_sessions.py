"""Training sessions: create (idempotent by id), list mine, detail, close (closes its rooms)."""

import pytest

from metrics.models import TrainingSession
from metrics.services import training_session_create
from rooms.models import Room, Spectator
from tests.api_errors import assert_api_error

URL = "/api/v1/sessions/"


@pytest.fixture
def stranger(make_user):
    return make_user("stranger")


def test_create_with_an_id(api_client, owner):
    response = api_client(owner).post(
        URL, {"id": "ppo.run-1_a", "name": "PPO", "algorithm": "PPO", "total_episodes": 500}, format="json"
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["id"] == "ppo.run-1_a"
    assert body["name"] == "PPO"
    assert body["algorithm"] == "PPO"
    assert body["total_episodes"] == 500
    assert body["owner"] == "owner"
    assert body["status"] == TrainingSession.objects.get(pk="ppo.run-1_a").status
    assert body["created_at"] and body["updated_at"]


def test_create_without_an_id_generates_one(api_client, owner):
    response = api_client(owner).post(URL, {"name": "Cart Pole!"}, format="json")

    assert response.status_code == 201, response.json()
    assert response.json()["id"].startswith("cart-pole-")
    assert TrainingSession.objects.get(pk=response.json()["id"]).owner == owner


def test_create_with_an_empty_body(api_client, owner):
    response = api_client(owner).post(URL, {}, format="json")

    assert response.status_code == 201, response.json()
    assert response.json()["id"].startswith("session-")


def test_create_again_with_the_same_id_returns_it(api_client, owner):
    client = api_client(owner)
    first = client.post(URL, {"id": "run-1", "name": "first"}, format="json")

    again = client.post(URL, {"id": "run-1", "name": "second"}, format="json")

    assert first.status_code == 201
    assert again.status_code == 200, again.json()
    assert again.json()["id"] == "run-1"
    assert again.json()["name"] == "first"
    assert TrainingSession.objects.filter(pk="run-1").count() == 1


def test_id_of_someone_else_is_refused(api_client, owner, stranger, training_session):
    response = api_client(stranger).post(URL, {"id": training_session.id}, format="json")

    assert_api_error(response, 400, "validation_error", "id")
    assert TrainingSession.objects.get(pk=training_session.id).owner == owner


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"id": "has space"}, "id"),
        ({"id": "slash/es"}, "id"),
        ({"id": "-leading-dash"}, "id"),
        ({"id": ".hidden"}, "id"),
        ({"id": "ünïcode"}, "id"),
        ({"id": "x" * 65}, "id"),
        ({"id": "ok", "name": "n" * 201}, "name"),
        ({"id": "ok", "algorithm": "a" * 101}, "algorithm"),
        ({"id": "ok", "total_episodes": -1}, "total_episodes"),
        ({"id": "ok", "total_episodes": "lots"}, "total_episodes"),
        ({"id": "ok", "total_episodes": 2**31}, "total_episodes"),
    ],
)
def test_invalid_input_names_the_field(api_client, owner, body, field):
    assert_api_error(api_client(owner).post(URL, body, format="json"), 400, "validation_error", field)
    assert not TrainingSession.objects.exists()


def test_create_needs_sign_in(api_client, db):
    assert_api_error(api_client().post(URL, {"id": "run"}, format="json"), 401, "not_authenticated")
    assert not TrainingSession.objects.exists()


def test_create_with_a_token(api_client, owner, make_token):
    response = api_client(token=make_token(owner)).post(URL, {"id": "by-token"}, format="json")

    assert response.status_code == 201, response.json()
    assert response.json()["owner"] == "owner"


def test_list_shows_only_mine_newest_first(api_client, owner, stranger, training_session):
    newer, _ = training_session_create(owner=owner, id="newer")
    training_session_create(owner=stranger, id="not-mine")

    response = api_client(owner).get(URL)

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["count"] == 2
    assert [item["id"] for item in body["results"]] == ["newer", training_session.id]


def test_list_is_paginated(api_client, owner):
    for n in range(3):
        training_session_create(owner=owner, id=f"run-{n}")

    body = api_client(owner).get(URL + "?limit=2").json()

    assert body["count"] == 3
    assert len(body["results"]) == 2
    assert body["next"]


def test_list_needs_sign_in(api_client, db):
    assert_api_error(api_client().get(URL), 401, "not_authenticated")


def test_detail_of_mine(api_client, owner, training_session):
    response = api_client(owner).get(f"{URL}{training_session.id}/")

    assert response.status_code == 200, response.json()
    assert response.json()["id"] == training_session.id
    assert response.json()["owner"] == "owner"


def test_detail_of_someone_elses_looks_missing(api_client, stranger, training_session):
    theirs = assert_api_error(api_client(stranger).get(f"{URL}{training_session.id}/"), 404, "not_found")
    missing = assert_api_error(api_client(stranger).get(f"{URL}no-such-run/"), 404, "not_found")

    assert theirs == missing


def test_staff_sees_any_session(api_client, make_user, training_session):
    staff = make_user("moderator", staff=True)

    assert api_client(staff).get(f"{URL}{training_session.id}/").status_code == 200


def test_detail_needs_sign_in(api_client, training_session):
    assert_api_error(api_client().get(f"{URL}{training_session.id}/"), 401, "not_authenticated")


def test_close_closes_the_session_and_its_live_rooms(api_client, owner, training_session, make_room, make_user):
    live, _private = make_room(), make_room(access_level="private")
    seat = Spectator.objects.create(room=live, user=make_user(), display_name="watcher")

    response = api_client(owner).post(f"{URL}{training_session.id}/close/")

    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "closed"
    assert set(Room.objects.values_list("status", flat=True)) == {"closed"}
    seat.refresh_from_db()
    assert seat.left_reason == "closed"
    assert_api_error(api_client().post(f"/api/v1/rooms/{live.code}/join/", {}, format="json"), 410, "room_closed")


def test_closed_session_takes_no_new_rooms(api_client, owner, training_session):
    client = api_client(owner)
    client.post(f"{URL}{training_session.id}/close/")

    response = client.post("/api/v1/rooms/", {"training_session_id": training_session.id}, format="json")

    assert_api_error(response, 400, "validation_error", "training_session_id")


def test_close_twice(api_client, owner, training_session):
    client = api_client(owner)
    client.post(f"{URL}{training_session.id}/close/")

    response = client.post(f"{URL}{training_session.id}/close/")

    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "closed"


def test_close_someone_elses_looks_missing(api_client, stranger, training_session, make_room):
    room = make_room()

    assert_api_error(api_client(stranger).post(f"{URL}{training_session.id}/close/"), 404, "not_found")
    assert_api_error(api_client(stranger).post(f"{URL}no-such-run/close/"), 404, "not_found")
    assert_api_error(api_client().post(f"{URL}{training_session.id}/close/"), 401, "not_authenticated")
    assert TrainingSession.objects.get(pk=training_session.id).status != "closed"
    assert Room.objects.get(pk=room.pk).status == "active"
