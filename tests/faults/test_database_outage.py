"""PostgreSQL unavailable for a while. The server reaches its database through a loopback
proxy the test cuts and restores: during the outage ingest answers 503 with a Retry-After,
the client package keeps buffering (the training loop never waits) and, once the database is
back, delivers everything: each point stored exactly once."""

from __future__ import annotations

import asyncio
import os
import secrets
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest

from spectator_client import SpectatorStream
from tests.faults.support import log_points, stored_episodes
from tests.support.servers import RELAXED_THROTTLES, ServerProcess, manage, server_env
from tests.support.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(180)]


@pytest.fixture
def database_behind_proxy():
    """A fresh PostgreSQL database, and a proxy in front of the server hosting it."""
    url = urlsplit(os.environ["DATABASE_URL"])
    name = f"spectator_outage_{secrets.token_hex(4)}"
    admin = url._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        with TcpProxy((url.hostname or "127.0.0.1", url.port or 5432)) as proxy:
            yield proxy, url._replace(netloc=f"{url.username}@127.0.0.1:{proxy.port}", path=f"/{name}").geturl()
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def wait_for(condition, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


async def test_ingest_answers_503_while_the_database_is_away_and_the_client_delivers_everything_after(
    database_behind_proxy, tmp_path
):
    proxy, database_url = database_behind_proxy
    env = server_env(tmp_path, DATABASE_URL=database_url, **RELAXED_THROTTLES)
    manage(env, "migrate", "--noinput")
    token = manage(env, "create_api_token", "trainer")
    headers = {"Authorization": f"Bearer {token}"}
    session_id = "db-outage"
    with ServerProcess(env, server="uvicorn") as server:
        with SpectatorStream(session_id, server.url, token, flush_interval=0.05, backoff_max=1.0) as stream:
            log_points(stream, range(0, 50))
            assert await asyncio.to_thread(stream.flush, 30)

            proxy.cut()
            retried_before = stream.stats()["retried"]
            log_points(stream, range(50, 100))  # returns at once: the loop never waits on the server
            point = {"stream": "probe", "seq": 1, "timestamp": 1.0, "episode": 1}
            answer = httpx.post(
                f"{server.url}/api/v1/sessions/{session_id}/ingest/", json={"points": [point]}, headers=headers
            )
            assert answer.status_code == 503, answer.text
            assert answer.json()["error"] == "database_unavailable"
            assert int(answer.headers["Retry-After"]) > 0
            await wait_for(lambda: stream.stats()["retried"] > retried_before)
            assert stream.stats()["pending_metrics"] > 0

            proxy.restore()
            log_points(stream, range(100, 150))
            assert await asyncio.to_thread(stream.flush, 60)
            stats = stream.stats()
            assert (stats["dropped"], stats["sent_metrics"]) == (0, 150), stats
        assert stored_episodes(server.url, token, session_id) == list(range(150))
