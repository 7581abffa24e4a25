"""A server process killed (SIGKILL, no goodbye) behind a balancing proxy: its spectators
reconnect through the proxy to the surviving process, the trainer's client fails over too,
and no point is lost or doubled."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from spectator_client import SpectatorStream
from tests.faults.support import Spectators, log_points, stored_episodes
from tests.support.redis_server import RedisServer, redis_server_binary
from tests.support.servers import RELAXED_THROTTLES, ServerProcess, manage, server_env
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.timeout(180)


async def test_spectators_of_a_killed_process_reconnect_to_another(tmp_path):
    with RedisServer(redis_server_binary()) as redis:
        env = server_env(tmp_path, REDIS_URL=redis.url, **RELAXED_THROTTLES)
        manage(env, "migrate", "--noinput")
        token = manage(env, "create_api_token", "trainer")
        with (
            ServerProcess(env, server="uvicorn") as first,
            ServerProcess(env, server="uvicorn") as second,
            TcpProxy(("127.0.0.1", first.port), ("127.0.0.1", second.port)) as proxy,
        ):
            url = f"http://127.0.0.1:{proxy.port}"
            session_id = "killed-process"
            with SpectatorStream(session_id, url, token, flush_interval=0.05, backoff_max=1.0) as stream:
                log_points(stream, range(0, 20))
                assert await asyncio.to_thread(stream.flush, 30)
                room = httpx.post(
                    f"{url}/api/v1/rooms/",
                    json={"training_session_id": session_id},
                    headers={"Authorization": f"Bearer {token}"},
                ).json()
                # Connections alternate between the processes: both hold spectators.
                spectators = Spectators(url, room["room_code"], 4)
                await spectators.start()
                try:
                    log_points(stream, range(20, 60))
                    await spectators.wait_until_all_saw(range(20, 60))

                    # Kill the process holding the spectators' sockets.
                    sockets = proxy.websockets_per_target
                    busiest = first if sockets[0] >= sockets[1] else second
                    busiest.process.kill()
                    busiest.process.wait(10)
                    log_points(stream, range(60, 120))
                    assert await asyncio.to_thread(stream.flush, 60)
                    await spectators.wait_until_all_saw(range(20, 120))
                    # The listeners on the killed process lost their sockets and came back.
                    assert max(spectators.reconnects) >= 2, spectators.reconnects
                finally:
                    await spectators.stop()
                assert stream.stats()["dropped"] == 0
            assert stored_episodes(url, token, session_id) == list(range(120))
            for seen in spectators.seen:
                assert sorted(seen) == list(range(20, 120))
