"""Export and history benchmark: a session of 1,000,000 metric points, SQLite and PostgreSQL.

    .venv/bin/python benchmarks/export.py                     # SQLite, and PostgreSQL if reachable
    BENCH_DATABASE_URL=postgres://… .venv/bin/python benchmarks/export.py
    BENCH_EXPORT_POINTS=100000 .venv/bin/python benchmarks/export.py   # a quicker run

For each database:
- seed one session with the points (all seed fields, two custom scalars) straight into the table;
- stream each export format through Django's test client in a subprocess that does nothing
  else, and report rows/s and that process's peak RSS (``ru_maxrss``; its RSS before the
  export, Django loaded, is shown too);
- stream the CSV from a real uvicorn server over HTTP and report the server's peak RSS
  (``VmHWM``);
- time the history endpoint downsampling the whole session to 1,000 points a curve.
Target (issue #6): one million rows as CSV in under 10 s with under 200 MB peak.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import orjson  # noqa: E402

DEFAULT_POSTGRES = "postgres://postgres@127.0.0.1:5432/spectator_export_bench"
from benchmarks.databases import bench_databases  # noqa: E402
from benchmarks.results import write_section  # noqa: E402
from tests.support.servers import ServerProcess, manage, server_env  # noqa: E402

POINTS = int(os.environ.get("BENCH_EXPORT_POINTS", 1_000_000))
SESSION = "export-bench"
HISTORY_QUERIES = (
    ("current_reward", ""),
    ("current_reward,average_reward,best_reward", ""),
    ("current_reward", "&smooth=0.01"),
    ("entropy", ""),
)

SEED_SCRIPT = """
import math, random, sys, time, orjson
import django
django.setup()
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from metrics.models import MetricPoint, TrainingSession
from metrics.services import _metric_points_insert, training_session_create
points, session_id = int(sys.argv[1]), sys.argv[2]
user, _ = get_user_model().objects.get_or_create(username="bench")
existing = TrainingSession.objects.filter(pk=session_id).first()
if existing and MetricPoint.objects.filter(training_session=existing).count() == points:
    print(orjson.dumps({"seeded": 0, "seconds": 0}).decode())
    sys.exit()
if existing:
    existing.delete()
session, _ = training_session_create(owner=user, id=session_id, algorithm="PPO")
rng = random.Random(1)
start = time.perf_counter()
batch = 10_000
for first in range(0, points, batch):
    rows = []
    for i in range(first, min(points, first + batch)):
        rows.append({
            "stream": "bench", "seq": i, "timestamp": 1.7e9 + i * 0.01, "episode": i, "total_episodes": points,
            "current_reward": math.sin(i / 5000) * 100 + rng.gauss(0, 5), "average_reward": math.sin(i / 5000) * 100,
            "best_reward": 105.0, "episode_length": 200 + i % 50, "win_rate": rng.random(),
            "loss_value": 1 / (1 + i) + rng.random() * 1e-3, "learning_rate": 3e-4, "epsilon": 0.05,
            "model_generation": i // 10_000, "algorithm": "PPO", "training_time_elapsed": i * 0.01,
            "actions_per_second": 950.0 + rng.random(), "frames_per_second": 60.0, "memory_usage_mb": 512.0,
            "extra": {"entropy": rng.random(), "kl": rng.random() * 0.01}, "decision": None,
        })
    with transaction.atomic():
        _metric_points_insert(session_id, rows)
session.extra_keys = ["entropy", "kl"]
session.save()
seconds = time.perf_counter() - start
if connection.vendor == "postgresql":
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE metrics_metricpoint")
print(orjson.dumps({"seeded": points, "seconds": seconds}).decode())
"""

EXPORT_SCRIPT = """
import resource, sys, time, orjson
import django
django.setup()
from django.contrib.auth import get_user_model
from django.test import Client
session_id, export_format = sys.argv[1], sys.argv[2]
client = Client()
client.force_login(get_user_model().objects.get(username="bench"))
client.get("/healthz")
baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
response = client.get(f"/api/v1/sessions/{session_id}/metrics.{export_format}")
assert response.status_code == 200, response.status_code
size = lines = 0
for chunk in response.streaming_content:
    size += len(chunk)
    lines += chunk.count(b"\\n")
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
result = {"seconds": seconds, "bytes": size, "lines": lines, "baseline_kb": baseline, "peak_kb": peak}
print(orjson.dumps(result).decode())
"""


def run_script(env: dict, script: str, *args: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        timeout=1800,
    )
    if result.returncode != 0:
        raise RuntimeError(result.stderr.decode())
    return orjson.loads(result.stdout.splitlines()[-1])


def rows_of(export_format: str, result: dict) -> int:
    # CSV: a header line and one line a point; NDJSON: one line a point; JSON: one array.
    return {"csv": result["lines"] - 1, "ndjson": result["lines"], "json": POINTS}[export_format]


def peak_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def server_csv(server: ServerProcess, token: str) -> dict:
    headers = {"Authorization": f"Bearer {token}"}
    start = time.perf_counter()
    size = lines = 0
    with httpx.stream(
        "GET", f"{server.url}/api/v1/sessions/{SESSION}/metrics.csv", headers=headers, timeout=120
    ) as response:
        response.raise_for_status()
        for chunk in response.iter_bytes():
            size += len(chunk)
            lines += chunk.count(b"\n")
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "bytes": size, "rows": lines - 1, "peak_kb": peak_rss_kb(server.process.pid)}


def history_times(server: ServerProcess, token: str) -> list[tuple[str, float, int]]:
    headers = {"Authorization": f"Bearer {token}"}
    out = []
    for metrics, extra in HISTORY_QUERIES:
        url = f"{server.url}/api/v1/sessions/{SESSION}/history/?metrics={metrics}&points=1000{extra}"
        times = []
        for _ in range(3):
            start = time.perf_counter()
            response = httpx.get(url, headers=headers, timeout=120)
            times.append((time.perf_counter() - start) * 1000)
            response.raise_for_status()
        body = response.json()
        points = max(len(series["data"]) for series in body["series"].values())
        out.append((f"`metrics={metrics}{extra}`", statistics.median(times), points))
    return out


def main() -> None:
    databases = bench_databases(DEFAULT_POSTGRES)
    export_rows, server_rows, history_rows = [], [], []
    for name, url in databases:
        env = server_env(
            Path(tempfile.mkdtemp(prefix="spectator-export-")),
            DATABASE_URL=url,
            LOG_LEVEL="WARNING",
            SPECTATOR_THROTTLE_USER="1000000/min",
        )
        manage(env, "migrate", "--noinput")
        token = manage(env, "create_api_token", "bench")
        seeded = run_script(env, SEED_SCRIPT, str(POINTS), SESSION)
        if seeded["seeded"]:
            print(f"{name}: seeded {seeded['seeded']:,} points in {seeded['seconds']:.1f} s")
        for export_format in ("csv", "ndjson", "json"):
            result = run_script(env, EXPORT_SCRIPT, SESSION, export_format)
            rows = rows_of(export_format, result)
            row = (
                name,
                export_format.upper(),
                rows,
                result["seconds"],
                rows / result["seconds"],
                result["bytes"] / 1e6,
                result["baseline_kb"] / 1024,
                result["peak_kb"] / 1024,
            )
            export_rows.append(row)
            print(
                f"{name:<11} {row[1]:<7} {rows:>9,} rows {row[3]:6.2f} s {row[4]:>9,.0f} rows/s "
                f"{row[5]:7.1f} MB  RSS {row[6]:.0f} → {row[7]:.0f} MB"
            )
        with ServerProcess(env, server="uvicorn") as server:
            result = server_csv(server, token)
            server_rows.append((name, result))
            print(
                f"{name:<11} CSV over HTTP (uvicorn) {result['rows']:,} rows {result['seconds']:.2f} s, "
                f"server peak RSS {result['peak_kb'] / 1024:.0f} MB"
            )
            for query, ms, points in history_times(server, token):
                history_rows.append((name, query, ms, points))
                print(f"{name:<11} history {query:<60} {ms:7.0f} ms ({points} points a curve)")
    lines = [
        f"One session of {POINTS:,} metric points (every seed field and two custom scalars). Each",
        "export streams through Django's test client in a subprocess that does only that; RSS is its",
        "`ru_maxrss` before the export (Django loaded) and at the end (the peak). Target: 1,000,000",
        "rows as CSV in under 10 s, under 200 MB peak.",
        "",
        "| database | format | rows | seconds | rows/s | MB written | RSS before | peak RSS |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        *(
            f"| {r[0]} | {r[1]} | {r[2]:,} | {r[3]:.2f} | {r[4]:,.0f} | {r[5]:,.0f} | {r[6]:.0f} MB | {r[7]:.0f} MB |"
            for r in export_rows
        ),
        "",
        "The CSV from a real server (uvicorn, ASGI: the chunks are produced one by one in the request's",
        "thread), read over loopback with httpx; RSS is the server process's peak (`VmHWM`) over its life:",
        "",
        "| database | rows | seconds | rows/s | server peak RSS |",
        "| --- | ---: | ---: | ---: | ---: |",
        *(
            f"| {name} | {r['rows']:,} | {r['seconds']:.2f} | {r['rows'] / r['seconds']:,.0f} | "
            f"{r['peak_kb'] / 1024:.0f} MB |"
            for name, r in server_rows
        ),
        "",
        f"History: `GET /api/v1/sessions/<id>/history/?points=1000` over all {POINTS:,} points, median",
        "of 3 over HTTP (min/max per bucket in SQL, two indexed range queries a bucket; custom",
        "scalars are read out of the JSON column, which costs more per row):",
        "",
        "| database | query | ms | points a curve |",
        "| --- | --- | ---: | ---: |",
        *(f"| {r[0]} | {r[1]} | {r[2]:,.0f} | {r[3]} |" for r in history_rows),
    ]
    write_section("Export", "\n".join(lines))


if __name__ == "__main__":
    main()
