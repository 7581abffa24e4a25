"""Two real server processes share rooms through Redis: a trainer on one, spectators on the other."""

import asyncio
import json
import os
import time

import httpx
import pytest
import websockets

from tests.support.servers import ServerProcess, manage, server_env

pytestmark = pytest.mark.redis


@pytest.fixture
def two_servers(tmp_path):
    env = server_env(tmp_path, REDIS_URL=os.environ.get("REDIS_URL"))
    manage(env, "migrate", "--noinput")
    token = manage(env, "create_api_token", "trainer")
    with ServerProcess(env) as first, ServerProcess(env) as second:
        yield first, second, token


async def _next_of_type(ws, wanted: str, timeout: float = 10.0) -> dict:
    async with asyncio.timeout(timeout):
        while True:
            raw = await ws.recv()
            if isinstance(raw, str):
                message = json.loads(raw)
                if message["type"] == wanted:
                    return message


async def test_trainer_on_one_process_reaches_spectators_on_the_other(two_servers):
    first, second, token = two_servers
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=first.url, headers=headers) as api:
        (await api.post("/api/v1/sessions/", json={"id": "scale-run", "algorithm": "PPO"})).raise_for_status()
        room = (await api.post("/api/v1/rooms/", json={"training_session_id": "scale-run"})).json()
    async with httpx.AsyncClient(base_url=second.url) as anonymous:
        joined = (await anonymous.post(f"/api/v1/rooms/{room['room_code']}/join/", json={"display_name": "Bo"})).json()
    assert joined["websocket_url"].startswith(second.ws_url)

    async with websockets.connect(joined["websocket_url"], origin=second.url) as spectator:
        await _next_of_type(spectator, "snapshot")
        async with websockets.connect(f"{first.ws_url}/ws/ingest/scale-run/", additional_headers=headers) as trainer:
            points = [
                {"stream": "t", "seq": i, "timestamp": time.time(), "episode": i, "current_reward": i * 1.5}
                for i in range(3)
            ]
            await trainer.send(json.dumps({"type": "metrics", "ref": 1, "points": points}))
            ack = await _next_of_type(trainer, "ack")
            assert ack["accepted"] == 3
            seen = [(await _next_of_type(spectator, "training_metrics"))["data"]["current_reward"] for _ in range(3)]
            assert seen == [0.0, 1.5, 3.0]
