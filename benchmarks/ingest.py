"""Ingest benchmark: metric points per second accepted and persisted, SQLite and PostgreSQL.

    .venv/bin/python benchmarks/ingest.py                     # SQLite, and PostgreSQL if reachable
    BENCH_DATABASE_URL=postgres://… .venv/bin/python benchmarks/ingest.py

Two paths per database:
- service: validation + persistence + serializing the broadcast (``metric_points_append``), in-process;
- socket: a trainer streaming 1,000-point batches to a real uvicorn server's ingest socket,
  waiting for each acknowledgement (acked = persisted).
Each run also resends a batch to check nothing is stored twice.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402
import websockets  # noqa: E402

from benchmarks.databases import bench_databases  # noqa: E402
from benchmarks.results import write_section  # noqa: E402
from tests.support.servers import ServerProcess, manage, server_env  # noqa: E402

POINTS = 100_000
BATCH = 1000
DEFAULT_POSTGRES = "postgres://postgres@127.0.0.1:5432/spectator_ingest_bench"


def raw_point(seq: int) -> dict:
    return {
        "stream": "bench",
        "seq": seq,
        "timestamp": time.time(),
        "episode": seq,
        "total_episodes": 1_000_000,
        "current_reward": 1.0 + seq % 7,
        "average_reward": 0.5,
        "best_reward": 8.0,
        "episode_length": 200,
        "win_rate": 0.5,
        "loss_value": 0.01,
        "learning_rate": 3e-4,
        "epsilon": 0.05,
        "model_generation": 3,
        "algorithm": "PPO",
        "training_time_elapsed": 12.5,
        "actions_per_second": 950.0,
        "frames_per_second": 60.0,
        "extra": {"entropy": 0.7, "kl": 0.01},
    }


SERVICE_SCRIPT = """
import sys, time, orjson
import django
django.setup()
from django.contrib.auth import get_user_model
from metrics.ingest import metric_points_clean
from metrics.models import MetricPoint
from metrics.services import metric_points_append, training_session_create
points, batch = int(sys.argv[1]), int(sys.argv[2])
raw = orjson.loads(sys.stdin.buffer.read())
user, _ = get_user_model().objects.get_or_create(username="bench")
session, _ = training_session_create(owner=user, id=f"svc-{time.time_ns()}")
start = time.perf_counter()
for i in range(0, points, batch):
    metric_points_append(training_session=session, points=metric_points_clean(raw[i:i + batch]))
elapsed = time.perf_counter() - start
again = metric_points_append(training_session=session, points=metric_points_clean(raw[:batch]))
stored = MetricPoint.objects.filter(training_session=session).count()
print(orjson.dumps({"rate": points / elapsed, "stored": stored, "duplicates": again.duplicates}).decode())
"""


def service_path(env: dict) -> dict:
    payload = orjson.dumps([raw_point(i) for i in range(POINTS)])
    result = subprocess.run(
        [sys.executable, "-c", SERVICE_SCRIPT, str(POINTS), str(BATCH)],
        input=payload,
        cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        timeout=600,
    )
    if result.returncode != 0:
        raise RuntimeError(result.stderr.decode())
    return orjson.loads(result.stdout.splitlines()[-1])


async def socket_path(server: ServerProcess, token: str) -> dict:
    import httpx

    session_id = f"sock-{time.time_ns()}"
    headers = {"Authorization": f"Bearer {token}"}
    httpx.post(f"{server.url}/api/v1/sessions/", json={"id": session_id}, headers=headers).raise_for_status()
    batches = [
        orjson.dumps({"type": "metrics", "ref": i, "points": [raw_point(s) for s in range(i, i + BATCH)]}).decode()
        for i in range(0, POINTS, BATCH)
    ]
    accepted = 0
    async with websockets.connect(
        f"{server.ws_url}/ws/ingest/{session_id}/", additional_headers=headers, max_size=None
    ) as ws:
        start = time.perf_counter()
        for batch in batches:
            await ws.send(batch)
            ack = orjson.loads(await ws.recv())
            if ack.get("type") != "ack":
                raise RuntimeError(f"unexpected reply: {ack}")
            accepted += ack["accepted"]
        elapsed = time.perf_counter() - start
        await ws.send(batches[0])
        again = orjson.loads(await ws.recv())
    history = httpx.get(
        f"{server.url}/api/v1/sessions/{session_id}/metrics/", params={"after_id": 0, "limit": 1}, headers=headers
    )
    history.raise_for_status()
    return {"rate": POINTS / elapsed, "stored": accepted, "duplicates": again["duplicates"]}


def main() -> None:
    databases = bench_databases(DEFAULT_POSTGRES)
    rows = []
    for name, url in databases:
        env = server_env(Path(tempfile.mkdtemp(prefix="spectator-ingest-")), DATABASE_URL=url, LOG_LEVEL="WARNING")
        manage(env, "migrate", "--noinput")
        token = manage(env, "create_api_token", "bench")
        service = service_path(env)
        with ServerProcess(env, server="uvicorn") as server:
            socket = asyncio.run(socket_path(server, token))
        for path, result in (("service (in-process)", service), ("ingest socket (uvicorn)", socket)):
            row = (name, path, result["rate"], result["stored"], result["duplicates"])
            rows.append(row)
            print(f"{name:<11} {path:<24} {row[2]:>9.0f} points/s stored={row[3]} resent-batch duplicates={row[4]}")
    lines = [
        f"{POINTS:,} metric points (all seed fields plus two custom scalars) in batches of {BATCH}; every point",
        "validated, persisted and serialized for broadcast. A resent batch must come back as duplicates, stored once.",
        "Target: at least 20,000 points/s into PostgreSQL.",
        "",
        "| database | path | points/s | stored | duplicates on resend |",
        "| --- | --- | ---: | ---: | ---: |",
        *(f"| {r[0]} | {r[1]} | {r[2]:,.0f} | {r[3]:,} | {r[4]:,} |" for r in rows),
    ]
    write_section("Ingest", "\n".join(lines))


if __name__ == "__main__":
    main()
