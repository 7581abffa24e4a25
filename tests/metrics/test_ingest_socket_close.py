"""A trainer that sends batches and closes its ingest socket at once: everything it sent is
stored, although the acknowledgements can no longer reach it (uvicorn, as ./run serves)."""

import asyncio
import time

import httpx
import orjson
import websockets

from tests.support.servers import ServerProcess, manage, server_env


async def test_batches_sent_just_before_closing_are_all_stored(tmp_path):
    env = server_env(tmp_path)
    manage(env, "migrate", "--noinput")
    token = manage(env, "create_api_token", "trainer")
    headers = {"Authorization": f"Bearer {token}"}
    with ServerProcess(env, server="uvicorn") as server:
        httpx.post(f"{server.url}/api/v1/sessions/", json={"id": "closing"}, headers=headers).raise_for_status()
        async with websockets.connect(f"{server.ws_url}/ws/ingest/closing/", additional_headers=headers) as trainer:
            for seq in range(20):
                point = {"stream": "t", "seq": seq, "timestamp": time.time(), "episode": seq}
                await trainer.send(orjson.dumps({"type": "metrics", "ref": seq, "points": [point]}).decode())
        # Closed without reading a single acknowledgement; the server works through its queue.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while True:
            rows = httpx.get(f"{server.url}/api/v1/sessions/closing/metrics/", headers=headers).json()
            if len(rows) == 20 or loop.time() > deadline:
                break
            await asyncio.sleep(0.05)
        assert [row["data"]["seq"] for row in rows] == list(range(20))
