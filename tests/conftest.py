"""Shared fixtures: users, tokens, API clients, training sessions and rooms on the real database.

With ``SPECTATOR_REQUIRE_SERVICES=1`` (set by ``.ci/run``) the session fails at once unless
``DATABASE_URL`` is PostgreSQL and ``REDIS_URL`` answers; tests marked ``postgres`` or
``redis`` otherwise skip with the reason when those variables are absent.
"""

import os

os.environ.setdefault("SPECTATOR_SWEEP_INTERVAL", "0")

import pytest  # noqa: E402

# Real server processes for end-to-end tests (client package, demo, integrations, examples).
from tests.support.live_server import make_server, server_template, spectator_server, unique  # noqa: E402, F401


def _services_problem() -> str | None:
    database_url = os.environ.get("DATABASE_URL", "")
    redis_url = os.environ.get("REDIS_URL", "")
    if not database_url.startswith(("postgres://", "postgresql://")):
        return "DATABASE_URL is not a PostgreSQL URL"
    if not redis_url:
        return "REDIS_URL is not set"
    try:
        import psycopg

        with psycopg.connect(database_url, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - report whatever broke
        return f"PostgreSQL at DATABASE_URL is unreachable: {exc}"
    try:
        import redis

        redis.Redis.from_url(redis_url, socket_connect_timeout=5).ping()
    except Exception as exc:  # noqa: BLE001
        return f"Redis at REDIS_URL is unreachable: {exc}"
    return None


def pytest_configure(config):
    if os.environ.get("SPECTATOR_REQUIRE_SERVICES") == "1":
        problem = _services_problem()
        if problem:
            raise pytest.UsageError(f"SPECTATOR_REQUIRE_SERVICES=1 but {problem}.")


def pytest_collection_modifyitems(config, items):
    from django.conf import settings

    is_postgres = settings.DATABASE_IS_POSTGRES
    has_redis = bool(settings.REDIS_URL)
    for item in items:
        if "postgres" in item.keywords and not is_postgres:
            item.add_marker(
                pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL=postgres://… (.ci/run's second pass does)")
            )
        if "redis" in item.keywords and not has_redis:
            item.add_marker(
                pytest.mark.skip(reason="needs Redis: set REDIS_URL=redis://… (.ci/run's second pass does)")
            )


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # PBKDF2 at Django's default cost takes ~0.5 s a hash; the hasher is not under test.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _recordings_in_tmp(settings, tmp_path):
    # Recorded episodes go to the test's own folder, written before ingest answers (no writer
    # thread outliving the test's database access); tests of the writer thread turn it on.
    settings.SPECTATOR_RECORDINGS_DIR = tmp_path / "recordings"
    settings.SPECTATOR_RECORDING_WRITER = "inline"


@pytest.fixture(autouse=True)
def _clear_cache():
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def make_user(db, django_user_model):
    counter = {"n": 0}

    def make(username=None, *, staff=False, password="correct-horse-battery"):
        counter["n"] += 1
        user = django_user_model.objects.create_user(
            username=username or f"user{counter['n']}", password=password, is_staff=staff
        )
        return user

    return make


@pytest.fixture
def make_token(db):
    from accounts.services import api_token_create

    def make(user):
        _token, raw = api_token_create(username=user.username)
        return raw

    return make


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    def make(user=None, *, token=None):
        client = APIClient()
        if token:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        elif user is not None:
            client.force_authenticate(user)
        return client

    return make


@pytest.fixture
def owner(make_user):
    return make_user("owner")


@pytest.fixture
def training_session(owner):
    from metrics.services import training_session_create

    session, _created = training_session_create(owner=owner, id="cartpole-dqn", name="CartPole DQN", algorithm="DQN")
    return session


@pytest.fixture
def make_room(training_session, owner):
    from rooms.services import room_create

    def make(**kwargs):
        kwargs.setdefault("creator", owner)
        kwargs.setdefault("training_session", training_session)
        room, password = room_create(**kwargs)
        room.plain_password = password
        return room

    return make
