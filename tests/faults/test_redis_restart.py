"""Redis restarted in the middle of a live stream (DESIGN.md: several processes share rooms
through Redis). A trainer streams through one server process, spectators watch through
another; Redis is killed and started again empty, as a restart without persistence does.

Every point accepted before, during and after is in the history exactly once; the trainer's
client keeps going by itself and the spectators' listeners reconnect by themselves (the hub
closes local sockets with 1012 once Redis is back) and end up with every point.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from spectator_client import SpectatorStream
from tests.faults.support import Spectators, log_points, stored_episodes
from tests.support.redis_server import RedisServer, redis_server_binary
from tests.support.servers import RELAXED_THROTTLES, ServerProcess, manage, server_env

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def cluster(tmp_path):
    """A private Redis and two uvicorn processes sharing it (and one SQLite file)."""
    with RedisServer(redis_server_binary()) as redis:
        env = server_env(tmp_path, REDIS_URL=redis.url, **RELAXED_THROTTLES)
        manage(env, "migrate", "--noinput")
        token = manage(env, "create_api_token", "trainer")
        with ServerProcess(env, server="uvicorn") as trainer_side, ServerProcess(env, server="uvicorn") as viewer_side:
            yield redis, trainer_side, viewer_side, token


async def test_a_redis_restart_loses_no_point_and_everyone_reconnects_alone(cluster):
    redis, trainer_side, viewer_side, token = cluster
    session_id = "redis-restart"
    with SpectatorStream(session_id, trainer_side.url, token, flush_interval=0.05) as stream:
        log_points(stream, range(0, 50))
        assert await asyncio.to_thread(stream.flush, 30)
        room = httpx.post(
            f"{trainer_side.url}/api/v1/rooms/",
            json={"training_session_id": session_id},
            headers={"Authorization": f"Bearer {token}"},
        ).json()
        spectators = Spectators(viewer_side.url, room["room_code"], 3)
        await spectators.start()
        try:
            log_points(stream, range(50, 100))
            await spectators.wait_until_all_saw(range(50, 100))

            redis.stop()
            # Redis is down: the trainer goes on; the server stores what it is sent.
            log_points(stream, range(100, 150))
            assert await asyncio.to_thread(stream.flush, 30)
            redis.start()
            log_points(stream, range(150, 200))
            assert await asyncio.to_thread(stream.flush, 30)

            await spectators.wait_until_all_saw(range(50, 200))
            assert all(count >= 2 for count in spectators.reconnects), spectators.reconnects
        finally:
            await spectators.stop()
        stats = stream.stats()
        assert (stats["dropped"], stats["sent_metrics"]) == (0, 200), stats
    assert stored_episodes(trainer_side.url, token, session_id) == list(range(200))
    for seen in spectators.seen:
        assert sorted(seen) == list(range(50, 200)), "a point was handed to a callback twice or not at all"
