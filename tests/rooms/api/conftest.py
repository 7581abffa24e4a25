"""Fixtures for the room API tests: the people around a room and a join helper."""

import pytest


@pytest.fixture
def stranger(make_user):
    return make_user("stranger")


@pytest.fixture
def staff(make_user):
    return make_user("moderator", staff=True)


@pytest.fixture
def owner_client(api_client, owner):
    return api_client(owner)


@pytest.fixture
def join():
    """POST a join for ``room`` (a Room or a code) with ``client``; keyword arguments are the body."""

    def post(client, room, **data):
        code = getattr(room, "code", room)
        return client.post(f"/api/v1/rooms/{code}/join/", data, format="json")

    return post
