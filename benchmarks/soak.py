"""Soak benchmark: a long live stream to hundreds of spectators who come and go.

    .venv/bin/python benchmarks/soak.py                      # 30 minutes, 500 spectators
    .venv/bin/python benchmarks/soak.py --minutes 3          # a short check

One trainer streams 50 metric points/s and 30 decisions/s through the ingest socket of a
uvicorn server; 500 spectators watch, and every second a few of them leave and new ones join
(churn: each leaving spectator's seat is freed, each newcomer joins through the API for a
ticket). Reported per minute: the server's resident memory and the memory blocks its interpreter
holds (both must stay flat after warm-up), p50/p99 latency
(trainer timestamp to the spectator's receipt of ``training_metrics``), connections opened and
closed, and lost points: every connection checks that the sequence numbers it received run
without a gap from its first to its last, and the ones still open at the end must have the
final point.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import orjson  # noqa: E402
import websockets  # noqa: E402

from benchmarks.fanout import WORKERS, _handshake, _Spectator, bench_server_env  # noqa: E402
from benchmarks.results import percentile, write_section  # noqa: E402
from tests.support.servers import ServerProcess  # noqa: E402

POINTS_PER_S = 50
DECISIONS_PER_S = 30
SAMPLE_S = 10.0


# --- spectators (worker processes) --------------------------------------------------------


class Watcher:
    """What one connection saw: its first and last seq and any gap between."""

    __slots__ = ("client", "first", "last", "gaps", "opened")

    def __init__(self):
        self.client = None
        self.first = self.last = None
        self.gaps = 0
        self.opened = time.time()


def _worker(server_url, code, spectators, churn_per_s, stop, final_seq, results) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(_worker_main(server_url, code, spectators, churn_per_s, stop, final_seq, results))


async def _worker_main(server_url, code, spectators, churn_per_s, stop, final_seq, results) -> None:
    loop = asyncio.get_running_loop()
    watchers: dict[object, Watcher] = {}
    finished: list[Watcher] = []
    latencies: dict[int, list[float]] = {}
    counts = {"opened": 0, "closed": 0, "join_errors": 0}
    marker = b'{"type":"training_metrics"'
    started = time.time()

    def tally(client, buffer, start, end) -> None:
        if buffer[start : start + 26] != marker:
            return
        data = orjson.loads(bytes(buffer[start:end]))["data"]
        watcher = watchers.get(client)
        if watcher is None:
            return
        seq = data["seq"]
        if watcher.first is None:
            watcher.first = seq
        elif seq > watcher.last + 1:
            watcher.gaps += seq - watcher.last - 1
        if watcher.last is None or seq > watcher.last:
            watcher.last = seq
        if seq % 5 == 0:
            now = time.time()
            latencies.setdefault(int((now - started) // 60), []).append((now - data["timestamp"]) * 1000)

    async with httpx.AsyncClient(base_url=server_url, timeout=30) as api:

        async def open_one() -> None:
            api.cookies.clear()
            try:
                joined = await api.post(f"/api/v1/rooms/{code}/join/", json={"display_name": "soak"})
                joined.raise_for_status()
                host, port, request = _handshake(joined.json()["websocket_url"], server_url)
                watcher = Watcher()
                _, client = await loop.create_connection(lambda: _Spectator(request, tally), host, port)
                watcher.client = client
                watchers[client] = watcher
                await asyncio.wait_for(client.opened, 30)
                counts["opened"] += 1
            except Exception:  # noqa: BLE001 - counted and reported
                counts["join_errors"] += 1

        def close_one() -> None:
            if not watchers:
                return
            client = random.choice(list(watchers))
            finished.append(watchers.pop(client))
            client.transport.close()
            counts["closed"] += 1

        for _ in range(spectators):
            await open_one()
        results.put(("ready", len(watchers)))
        carry = 0.0
        while not stop.is_set():
            await asyncio.sleep(1.0)
            carry += churn_per_s
            for _ in range(int(carry)):
                close_one()
                await open_one()
            carry -= int(carry)
        # Drain: wait (bounded) until the trainer's last point reached everyone still here.
        drain_until = loop.time() + 30
        while loop.time() < drain_until and any(w.last not in (None, final_seq.value) for w in watchers.values()):
            await asyncio.sleep(0.1)
    for client in list(watchers):
        client.transport.close()
    gaps = sum(w.gaps for w in finished) + sum(w.gaps for w in watchers.values())
    results.put(
        (
            "done",
            {
                **counts,
                "gaps": gaps,
                "last_seqs": [w.last for w in watchers.values()],
                "latencies": latencies,
            },
        )
    )


# --- the trainer ---------------------------------------------------------------------------


TICK_S = 0.1


async def trainer(ws_url: str, token: str, session_id: str, seconds: float) -> int:
    """Stream points and decisions every ``TICK_S`` for ``seconds``; return the last seq sent.

    A batch every 100 ms, as a client that batches does (the client package sends every 250 ms).
    """
    async with websockets.connect(
        f"{ws_url}/ws/ingest/{session_id}/",
        additional_headers={"Authorization": f"Bearer {token}"},
        max_size=None,
        ping_timeout=None,  # a late pong is measured as latency, not turned into a lost trainer
    ) as ws:

        async def drain():
            async for _ in ws:
                pass

        reader = asyncio.create_task(drain())
        start = time.monotonic()
        seq = decisions = 0
        while (elapsed := time.monotonic() - start) < seconds:
            due_points = int(elapsed * POINTS_PER_S) + 1
            due_decisions = int(elapsed * DECISIONS_PER_S) + 1
            now = time.time()
            if due_points > seq:
                points = [
                    {"stream": "soak", "seq": s, "timestamp": now, "episode": s, "current_reward": float(s % 200)}
                    for s in range(seq, due_points)
                ]
                await ws.send(orjson.dumps({"type": "metrics", "points": points}).decode())
                seq = due_points
            if due_decisions > decisions:
                batch = [
                    {"episode": seq, "step": d, "timestamp": now, "action_probabilities": [0.25, 0.75]}
                    for d in range(decisions, due_decisions)
                ]
                await ws.send(orjson.dumps({"type": "decisions", "decisions": batch}).decode())
                decisions = due_decisions
            await asyncio.sleep(TICK_S)
        reader.cancel()
        return seq - 1


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def gauge(exposition: str, name: str) -> float:
    for line in exposition.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return float("nan")


async def sample_memory(pid: int, base_url: str, seconds: float, samples: list) -> None:
    """Every SAMPLE_S: RSS, load, and the interpreter's allocated blocks (from /metrics).

    RSS keeps the allocator's high-water mark; the blocks the interpreter holds grow only with
    what it keeps alive, so the two tell a warm-up plateau from a leak.
    """
    start = time.monotonic()
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        while time.monotonic() - start < seconds:
            try:
                blocks = gauge((await client.get("/metrics")).text, "spectator_python_allocated_blocks")
            except httpx.HTTPError:
                blocks = float("nan")
            samples.append((time.monotonic() - start, rss_mb(pid), os.getloadavg()[0], blocks))
            await asyncio.sleep(SAMPLE_S)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--spectators", type=int, default=500)
    parser.add_argument("--churn", type=float, default=2.0, help="spectators leaving and joining per second")
    args = parser.parse_args()
    seconds = args.minutes * 60
    data_dir = Path(tempfile.mkdtemp(prefix="spectator-soak-"))
    env, token = bench_server_env(data_dir, REDIS_URL=os.environ.get("BENCH_REDIS_URL"))
    with ServerProcess(env, server="uvicorn") as server:
        session_id = "soak"
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=30) as api:
            api.post("/api/v1/sessions/", json={"id": session_id}).raise_for_status()
            room = api.post(
                "/api/v1/rooms/",
                json={"training_session_id": session_id, "access_control": {"max_spectators": args.spectators * 2}},
            ).json()
        results, stop, final_seq = mp.Queue(), mp.Event(), mp.Value("q", -1)
        per_worker = args.spectators // WORKERS
        procs = [
            mp.Process(
                target=_worker,
                args=(server.url, room["room_code"], per_worker, args.churn / WORKERS, stop, final_seq, results),
            )
            for _ in range(WORKERS)
        ]
        for proc in procs:
            proc.start()
        connected = sum(results.get(timeout=600)[1] for _ in procs)
        print(f"{connected} spectators connected; streaming for {args.minutes:g} min", flush=True)
        memory: list = []

        async def run():
            sampler = asyncio.create_task(sample_memory(server.process.pid, server.url, seconds, memory))
            last_seq = await trainer(server.ws_url, token, session_id, seconds)
            await sampler
            return last_seq

        last_seq = asyncio.run(run())
        final_seq.value = last_seq
        stop.set()
        parts = [results.get(timeout=120)[1] for _ in procs]
        for proc in procs:
            proc.join(30)
    report(args, connected, last_seq, memory, parts)


def report(args, connected, last_seq, memory, parts) -> None:
    gaps = sum(p["gaps"] for p in parts)
    # A connection opened after the last point has none live (the snapshot's history has them).
    missing_final = sum(1 for p in parts for last in p["last_seqs"] if last is not None and last != last_seq)
    minutes: dict[int, list[float]] = {}
    for part in parts:
        for minute, values in part["latencies"].items():
            minutes.setdefault(int(minute), []).extend(values)
    all_latencies = [v for values in minutes.values() for v in values]
    warm = [mb for t, mb, _, _ in memory if t >= 60] or [mb for _, mb, _, _ in memory]
    load = [one for _, _, one, _ in memory]
    blocks = [(t, b) for t, _, _, b in memory if b == b]
    warm_blocks = [b for t, b in blocks if t >= 60] or [b for _, b in blocks] or [float("nan")]
    lines = [
        f"{args.minutes:g} minutes; one trainer at {POINTS_PER_S} metric points/s and {DECISIONS_PER_S} decisions/s"
        f" through the ingest socket (a batch every {TICK_S * 1000:.0f} ms); {connected} spectators (uvicorn,"
        f" one process), {args.churn:g} leaving and as many joining each second. Lost points: gaps in any"
        " connection's sequence, plus connections open at the end without the last point.",
        "",
        f"- connections opened {sum(p['opened'] for p in parts):,}, closed {sum(p['closed'] for p in parts):,},"
        f" failed joins {sum(p['join_errors'] for p in parts)}",
        f"- points sent {last_seq + 1:,}; lost points {gaps}; open connections missing the last point {missing_final}",
        f"- latency p50 {percentile(all_latencies, 50):.1f} ms, p99 {percentile(all_latencies, 99):.1f} ms"
        f" ({len(all_latencies):,} samples)",
        f"- server RSS after the first minute: min {min(warm):.0f} MB, max {max(warm):.0f} MB, last {warm[-1]:.0f} MB",
        f"- interpreter's allocated blocks after the first minute: min {min(warm_blocks) / 1e3:,.0f}k,"
        f" max {max(warm_blocks) / 1e3:,.0f}k, last {warm_blocks[-1] / 1e3:,.0f}k",
        f"- machine load (1-minute average, 2 cores): mean {sum(load) / len(load):.1f}, max {max(load):.1f}"
        " (the benchmark's own server and clients count; other work adds to it)",
        "",
        "| minute | p50 ms | p99 ms | server RSS MB | allocated blocks (k) |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    for minute in sorted(minutes):
        # At the end of the minute.
        rss = [mb for t, mb, _, _ in memory if t < (minute + 1) * 60]
        held = [b for t, b in blocks if t < (minute + 1) * 60]
        lines.append(
            f"| {minute + 1} | {percentile(minutes[minute], 50):.1f} | {percentile(minutes[minute], 99):.1f} |"
            f" {rss[-1] if rss else float('nan'):.0f} | {held[-1] / 1e3 if held else float('nan'):,.0f} |"
        )
    text = "\n".join(lines)
    print(text)
    write_section("Soak", text + f"\n\nRun: `.venv/bin/python benchmarks/soak.py --minutes {args.minutes:g}`.")


if __name__ == "__main__":
    main()
