"""A real Spectator server for end-to-end tests (client, demo, integrations, examples): daphne on a
free loopback port, fresh SQLite. ``tests/conftest.py`` makes these fixtures available everywhere.

The database is migrated and the API tokens are created once per test session (with
``manage.py``) into a template folder; each server gets a copy of it, so starting another
server (the sync facade's "server down, then up" test) costs only daphne's start-up.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.servers import RELAXED_THROTTLES, ServerProcess, manage, server_env

USERS = {"alice": False, "bob": False, "carol": False, "dave": False, "erin": False, "mod": True}

# An already-expired room, made through the server's own services (no waiting for expiry).
EXPIRED_ROOM_SCRIPT = """
from datetime import timedelta
from django.contrib.auth import get_user_model
from django.utils import timezone
from metrics.services import training_session_create
from rooms.models import Room
from rooms.services import room_create
alice = get_user_model().objects.get(username="alice")
session, _ = training_session_create(owner=alice, id="expired-ts")
room, _ = room_create(creator=alice, training_session=session, custom_code="XPRD22")
Room.objects.filter(pk=room.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
"""


@dataclass
class Server:
    """A server process on its own copy of the template database, with the users' tokens."""

    data_dir: Path
    tokens: dict[str, str]
    process: ServerProcess

    @property
    def url(self) -> str:
        return self.process.url

    @property
    def port(self) -> int:
        return self.process.port

    def start(self) -> Server:
        self.process.start()
        return self

    def stop(self) -> None:
        self.process.stop()

    def api(self, user: str | None = None) -> httpx.Client:
        """A plain httpx client for checking what the server stored."""
        headers = {"Authorization": f"Bearer {self.tokens[user]}"} if user else {}
        return httpx.Client(base_url=f"{self.url}/api/v1/", headers=headers, timeout=10)


@pytest.fixture(scope="session")
def server_template(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A migrated database with users, their tokens and an expired room, to copy for each server."""
    data_dir = tmp_path_factory.mktemp("spectator-template")
    env = server_env(data_dir)
    manage(env, "migrate", "--noinput")
    tokens = {
        username: manage(env, "create_api_token", username, *(["--staff"] if staff else []))
        for username, staff in USERS.items()
    }
    manage(env, "shell", "-c", EXPIRED_ROOM_SCRIPT)
    return data_dir, tokens


@pytest.fixture(scope="session")
def make_server(server_template, tmp_path_factory):
    """Make (not start) a server on a fresh copy of the template database; stops them all at the end.

    ``make(server="uvicorn", SOME_SETTING="…")`` picks the server and adds to its environment.
    """
    template_dir, tokens = server_template
    servers: list[Server] = []

    def make(*, server: str = "daphne", **env_overrides: str) -> Server:
        data_dir = tmp_path_factory.mktemp("spectator-server")
        for item in template_dir.iterdir():
            if item.is_file():
                shutil.copy2(item, data_dir / item.name)
        env = server_env(data_dir, **{**RELAXED_THROTTLES, **env_overrides})
        made = Server(data_dir, dict(tokens), ServerProcess(env, server=server))
        servers.append(made)
        return made

    yield make
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def spectator_server(make_server) -> Server:
    """One running server shared by the integration tests (tests use unique session ids)."""
    return make_server().start()


@pytest.fixture
def unique():
    """Unique names for training sessions and rooms, so tests sharing a server never collide."""
    counter = {"n": 0}
    stamp = f"{os.getpid()}-{time.monotonic_ns() % 10**9}"

    def make(prefix: str = "ts") -> str:
        counter["n"] += 1
        return f"{prefix}-{stamp}-{counter['n']}"

    return make
