"""A flood of joins and messages from one client: it is rate limited, everyone else is not.

The server runs behind one proxy (SPECTATOR_NUM_PROXIES=1), so X-Forwarded-For tells the
flooding client from the others, as it would in production behind the reverse proxy.
"""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
import websockets

from tests.support.servers import ServerProcess, manage, next_of_type, server_env

pytestmark = pytest.mark.timeout(120)
JOIN_LIMIT = 30  # SPECTATOR_THROTTLE_JOIN's default, per minute
USER_LIMIT = 60


@pytest.fixture
def server(tmp_path):
    env = server_env(tmp_path, SPECTATOR_NUM_PROXIES="1", SPECTATOR_THROTTLE_USER=f"{USER_LIMIT}/min")
    manage(env, "migrate", "--noinput")
    tokens = {name: manage(env, "create_api_token", name) for name in ("trainer", "other")}
    with ServerProcess(env, server="uvicorn") as process:
        api = httpx.Client(base_url=process.url, headers={"Authorization": f"Bearer {tokens['trainer']}"})
        api.post("/api/v1/sessions/", json={"id": "flooded"}).raise_for_status()
        room = api.post(
            "/api/v1/rooms/", json={"training_session_id": "flooded", "access_control": {"max_spectators": 50}}
        ).json()
        yield process, tokens, room["room_code"]
        api.close()


def join(server_url: str, code: str, address: str) -> httpx.Response:
    return httpx.post(
        f"{server_url}/api/v1/rooms/{code}/join/", json={"display_name": "x"}, headers={"X-Forwarded-For": address}
    )


def test_a_join_flood_is_throttled_for_its_sender_only(server):
    process, _tokens, code = server
    answers = [join(process.url, code, "203.0.113.66").status_code for _ in range(JOIN_LIMIT + 5)]
    assert answers[:JOIN_LIMIT] == [200] * JOIN_LIMIT
    assert set(answers[JOIN_LIMIT:]) == {429}
    refused = join(process.url, code, "203.0.113.66")
    assert refused.json()["error"] == "throttled" and int(refused.headers["Retry-After"]) > 0
    assert join(process.url, code, "198.51.100.7").status_code == 200


def test_an_api_flood_from_one_token_leaves_other_users_alone(server):
    process, tokens, _code = server
    flooder = httpx.Client(base_url=process.url, headers={"Authorization": f"Bearer {tokens['trainer']}"})
    statuses = [flooder.get("/api/v1/sessions/").status_code for _ in range(USER_LIMIT + 5)]
    assert statuses.count(429) >= 5
    other = httpx.get(f"{process.url}/api/v1/sessions/", headers={"Authorization": f"Bearer {tokens['other']}"})
    assert other.status_code == 200
    flooder.close()


async def test_a_message_flood_closes_that_socket_and_others_keep_the_stream(server):
    process, tokens, code = server
    flooder_url = join(process.url, code, "203.0.113.1").json()["websocket_url"]
    calm_url = join(process.url, code, "203.0.113.2").json()["websocket_url"]
    async with (
        websockets.connect(flooder_url, origin=process.url) as flooder,
        websockets.connect(calm_url, origin=process.url) as calm,
    ):
        await next_of_type(calm, "snapshot")
        for n in range(200):
            try:
                await flooder.send(json.dumps({"type": "ping", "t": n}))
            except websockets.ConnectionClosed:
                break
        error = await next_of_type(flooder, "error")
        assert error["code"] == "rate_limited"
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:
                await asyncio.wait_for(flooder.recv(), 10)
        assert closed.value.rcvd.code == 4429
        point = {"stream": "t", "seq": 1, "timestamp": time.time(), "episode": 1, "current_reward": 2.5}
        httpx.post(
            f"{process.url}/api/v1/sessions/flooded/ingest/",
            json={"points": [point]},
            headers={"Authorization": f"Bearer {tokens['trainer']}"},
        ).raise_for_status()
        metrics = await next_of_type(calm, "training_metrics")
        assert metrics["data"]["current_reward"] == 2.5
