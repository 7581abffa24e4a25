"""Fan-out benchmark: one trainer streaming to N spectators over loopback.

Measures deliveries per second, end-to-end latency (trainer timestamp to spectator receipt)
and lost metric points, for Spectator served by uvicorn and by daphne, against a bare
`websockets` broadcast server measured in the same run as the ceiling.

    .venv/bin/python benchmarks/fanout.py            # 100 and 1,000 spectators
    .venv/bin/python benchmarks/fanout.py --quick    # 100 spectators, short steps
    .venv/bin/python benchmarks/fanout.py --redis-layers redis://127.0.0.1:6379/5
                                                     # core vs pub/sub, trainer and spectators
                                                     # on two processes

Spectator path: the trainer sends batches of metric points to the ingest socket; each point
is persisted, then its `training_metrics` and `graph_update` reach every spectator through
the room hub. The bare server broadcasts the same two texts per point with
`websockets.broadcast`. Clients run in worker processes and parse every message.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import orjson  # noqa: E402
import websockets  # noqa: E402

from benchmarks.results import percentile, write_section  # noqa: E402
from tests.support.servers import ServerProcess, free_port, manage, server_env  # noqa: E402

WORKERS = 2
WARMUP_S = 2.0
MEASURE_S = 5.0
DRAIN_S = 5.0
P99_LIMIT_MS = 100.0


# --- spectators (worker processes) --------------------------------------------------------


def _worker(urls: list[str], origin: str | None, warmup_seq: int, last_seq: int, ready, go, results) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(_worker_main(urls, origin, warmup_seq, last_seq, ready, go, results))


class _Spectator(asyncio.Protocol):
    """A minimal WebSocket client: one handshake, then unmasked server frames parsed in bulk.

    The `websockets` client costs ~30 µs of Python a message; with a thousand of them on two
    cores the clients, not the server, set the ceiling. This one slices frames out of each
    TCP read and parses only what it measures, so more of the machine is left to the server.
    Same client for both servers.
    """

    def __init__(self, request: bytes, tally) -> None:
        self.request = request
        self.tally = tally
        self.buffer = bytearray()
        self.upgraded = False
        self.opened = asyncio.get_running_loop().create_future()
        self.transport = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(self.request)

    def connection_lost(self, exc) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(f"closed during handshake: {exc!r}"))

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        if not self.upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(buffer[:end]).split(b"\r\n", 1)[0]
            del buffer[: end + 4]
            if b" 101 " not in status:
                self.opened.set_exception(ConnectionError(status.decode(errors="replace")))
                self.transport.close()
                return
            self.upgraded = True
            self.opened.set_result(None)
        offset = 0
        size = len(buffer)
        tally = self.tally
        while size - offset >= 2:
            opcode = buffer[offset] & 0x0F
            length = buffer[offset + 1] & 0x7F
            start = offset + 2
            if length == 126:
                if size - offset < 4:
                    break
                length = int.from_bytes(buffer[offset + 2 : offset + 4], "big")
                start = offset + 4
            elif length == 127:
                if size - offset < 10:
                    break
                length = int.from_bytes(buffer[offset + 2 : offset + 10], "big")
                start = offset + 10
            if size - start < length:
                break
            if opcode == 1:
                tally(self, buffer, start, start + length)
            elif opcode == 9:  # ping: answer with a masked pong (zero mask)
                payload = bytes(buffer[start : start + length])
                self.transport.write(bytes([0x8A, 0x80 | len(payload)]) + b"\0\0\0\0" + payload)
            elif opcode == 8:
                self.transport.close()
            offset = start + length
        if offset:
            del buffer[:offset]


def _handshake(url: str, origin: str | None) -> tuple[str, int, bytes]:
    from base64 import b64encode
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {parts.hostname}:{parts.port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {b64encode(os.urandom(16)).decode()}",
        "Sec-WebSocket-Version: 13",
    ]
    if origin:
        lines.append(f"Origin: {origin}")
    return parts.hostname, parts.port, ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _worker_main(urls, origin, warmup_seq, last_seq, ready, go, results) -> None:
    counts = {"messages": 0, "points": 0, "first": None, "last": None, "points_first": None, "points_last": None}
    latencies: list[float] = []
    expected_points = last_seq - warmup_seq + 1
    done = asyncio.Event()
    complete = [0]
    points_of: dict[_Spectator, int] = {}
    go_time = [float("inf")]
    metrics_marker = b'{"type":"training_metrics"'
    update_marker = b'{"type":"graph_update"'

    def tally(client, buffer, start, end) -> None:
        head = buffer[start : start + 26]
        is_metrics = head == metrics_marker
        if not is_metrics and head[:22] != update_marker:
            return
        now = time.time()
        counts["messages"] += 1
        sample = counts["messages"] % 7 == 0
        if not (is_metrics or sample):
            counts["last"] = now
            return
        message = orjson.loads(bytes(buffer[start:end]))
        if is_metrics:
            seq, stamp = message["data"]["seq"], message["data"]["timestamp"]
        elif message["graphs"]:
            seq, stamp = None, message["graphs"][0]["timestamp"]
        else:
            return
        if stamp < go_time[0]:
            counts["messages"] -= 1
            return
        counts["first"] = counts["first"] or now
        counts["last"] = now
        if sample:
            latencies.append((now - stamp) * 1000)
        if seq is not None and seq >= warmup_seq:
            counts["points"] += 1
            counts["points_first"] = counts["points_first"] or now
            counts["points_last"] = now
            points_of[client] = seen = points_of.get(client, 0) + 1
            if seen == expected_points:
                complete[0] += 1
                if complete[0] == len(urls):
                    done.set()

    loop = asyncio.get_running_loop()
    clients, errors = [], []
    for url in urls:
        host, port, request = _handshake(url, origin)
        try:
            _, client = await loop.create_connection(lambda r=request: _Spectator(r, tally), host, port)
            await asyncio.wait_for(client.opened, 60)
            clients.append(client)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
    ready.put((len(clients), [repr(e) for e in errors[:3]]))
    while not go.is_set():
        await asyncio.sleep(0.01)
    go_time[0] = go_start.value
    try:
        await asyncio.wait_for(done.wait(), timeout=WARMUP_S + MEASURE_S + DRAIN_S + 30)
    except TimeoutError:
        pass
    for client in clients:
        client.transport.close()
    results.put({**counts, "latencies": latencies})


go_start = mp.Value("d", 0.0)


def run_clients(urls: list[str], origin, warmup_seq: int, last_seq: int):
    ready, results, go = mp.Queue(), mp.Queue(), mp.Event()
    shards = [urls[i::WORKERS] for i in range(WORKERS)]
    procs = [
        mp.Process(target=_worker, args=(shard, origin, warmup_seq, last_seq, ready, go, results)) for shard in shards
    ]
    for proc in procs:
        proc.start()
    connected = 0
    for _ in procs:
        count, errors = ready.get(timeout=180)
        connected += count
        if errors:
            print("  connection errors:", errors)
    return procs, go, results, connected


def collect(procs, results) -> dict:
    merged = {"messages": 0, "points": 0, "latencies": []}
    merged |= dict.fromkeys(["first", "last", "points_first", "points_last"])
    for _ in procs:
        part = results.get(timeout=WARMUP_S + MEASURE_S + DRAIN_S + 90)
        merged["messages"] += part["messages"]
        merged["points"] += part["points"]
        merged["latencies"] += part["latencies"]
        for first, last in (("first", "last"), ("points_first", "points_last")):
            if part[first]:
                merged[first] = min(merged[first] or part[first], part[first])
                merged[last] = max(merged[last] or part[last], part[last])
    for proc in procs:
        proc.join(timeout=30)
    return merged


# --- publishers ---------------------------------------------------------------------------


def point(seq: int) -> dict:
    return {
        "stream": "bench",
        "seq": seq,
        "timestamp": time.time(),
        "episode": seq,
        "current_reward": 1.5,
        "average_reward": 1.0,
        "best_reward": 2.0,
        "win_rate": 0.5,
    }


async def paced(rate: float, total: int, send_batch) -> None:
    """Send ``total`` points at ``rate`` points/s in 10 ms ticks."""
    tick = 0.01
    start = time.monotonic()
    sent = 0
    while sent < total:
        due = min(total, int((time.monotonic() - start) * rate) + 1)
        if due > sent:
            await send_batch(sent, due)
            sent = due
        await asyncio.sleep(tick)


async def publish_spectator(ws_url: str, token: str, session_id: str, rate: float, total: int) -> None:
    async with websockets.connect(
        f"{ws_url}/ws/ingest/{session_id}/",
        additional_headers={"Authorization": f"Bearer {token}"},
        max_size=None,
        open_timeout=120,
    ) as ws:

        async def drain():
            async for _ in ws:
                pass

        reader = asyncio.create_task(drain())

        async def send_batch(lo: int, hi: int) -> None:
            await ws.send(orjson.dumps({"type": "metrics", "points": [point(s) for s in range(lo, hi)]}).decode())

        await paced(rate, total, send_batch)
        reader.cancel()


async def publish_bare(ws_url: str, rate: float, total: int) -> None:
    # The same two messages Spectator sends per point (metrics.graphs needs no Django).
    from metrics.graphs import graph_points

    async with websockets.connect(f"{ws_url}/pub") as ws:

        async def send_batch(lo: int, hi: int) -> None:
            for s in range(lo, hi):
                p = {**point(s), "extra": {}}
                await ws.send(orjson.dumps({"type": "training_metrics", "data": p}).decode())
                await ws.send(orjson.dumps({"type": "graph_update", "graphs": graph_points(p)}).decode())

        await paced(rate, total, send_batch)


def bare_server_main(port: int, ready) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass

    async def main():
        subscribers = set()

        async def handler(ws):
            if ws.request.path == "/pub":
                async for message in ws:
                    websockets.broadcast(subscribers, message)
            else:
                subscribers.add(ws)
                try:
                    await ws.wait_closed()
                finally:
                    subscribers.discard(ws)

        async with websockets.serve(handler, "127.0.0.1", port, max_size=None, compression=None):
            ready.set()
            await asyncio.Future()

    asyncio.run(main())


# --- one measured step ------------------------------------------------------------------------


PROFILE_DIR = os.environ.get("FANOUT_PROFILE_DIR")


def _profiler(pid: int | None, label: str):
    """With FANOUT_PROFILE_DIR set: py-spy samples the server while the step is measured."""
    if not (PROFILE_DIR and pid):
        return None
    out = Path(PROFILE_DIR) / f"{label}.txt"
    return subprocess.Popen(
        [
            str(Path(sys.executable).parent / "py-spy"),
            "record",
            "-p",
            str(pid),
            "-d",
            str(int(WARMUP_S + MEASURE_S)),
            "-f",
            "raw",
            "-o",
            str(out),
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def measure(kind: str, urls, origin, rate: float, publish, server_pid: int | None = None) -> dict:
    warmup_seq = int(rate * WARMUP_S)
    total = int(rate * (WARMUP_S + MEASURE_S))
    procs, go, results, connected = run_clients(urls, origin, warmup_seq, total - 1)
    go_start.value = time.time()
    go.set()
    profiler = _profiler(server_pid, f"{kind.split()[-1].strip('()')}-{len(urls)}-{rate:g}")
    asyncio.run(publish(rate, total))
    merged = collect(procs, results)
    if profiler is not None:
        profiler.wait()
    expected_points = (total - warmup_seq) * len(urls)
    elapsed = (merged["last"] - merged["first"]) if merged["first"] else float("nan")
    points_elapsed = (merged["points_last"] - merged["points_first"]) if merged["points_first"] else float("nan")
    lat = merged["latencies"]
    return {
        "kind": kind,
        "spectators": connected,
        "rate": rate,
        "deliveries_per_s": merged["messages"] / elapsed if elapsed and elapsed > 0 else 0.0,
        "points_per_s": merged["points"] / points_elapsed if points_elapsed and points_elapsed > 0 else 0.0,
        "p50_ms": percentile(lat, 50),
        "p99_ms": percentile(lat, 99),
        "lost_points": expected_points - merged["points"],
    }


def spectator_setup(server: ServerProcess, token: str, n: int) -> tuple[str, list[str]]:
    session_id = f"fanout-{n}-{server.port}"
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as api:
        api.post("/api/v1/sessions/", json={"id": session_id}).raise_for_status()
        room = api.post(
            "/api/v1/rooms/",
            json={"training_session_id": session_id, "access_control": {"max_spectators": n + 10}},
        ).json()
    urls = []
    with httpx.Client(base_url=server.url, timeout=30) as anonymous:
        for i in range(n):
            anonymous.cookies.clear()
            joined = anonymous.post(f"/api/v1/rooms/{room['room_code']}/join/", json={"display_name": f"s{i}"})
            joined.raise_for_status()
            urls.append(joined.json()["websocket_url"])
    return session_id, urls


def bench_server_env(data_dir: Path, **overrides) -> tuple[dict, str]:
    """A migrated data dir with limits lifted for 1,000 joins from one address; and a trainer token."""
    env = server_env(
        data_dir,
        DATABASE_URL=os.environ.get("BENCH_DATABASE_URL"),
        SPECTATOR_THROTTLE_JOIN="1000000/min",
        SPECTATOR_THROTTLE_ANON="1000000/min",
        SPECTATOR_THROTTLE_USER="1000000/min",
        SPECTATOR_TICKET_MAX_AGE="3600",
        SPECTATOR_PRESENCE_TIMEOUT="3600",
        LOG_LEVEL="WARNING",
        **overrides,
    )
    manage(env, "migrate", "--noinput")
    return env, manage(env, "create_api_token", "bench-trainer")


def run(sizes, rates_for, servers) -> list[dict]:
    rows = []
    data_dir = Path(tempfile.mkdtemp(prefix="spectator-fanout-"))
    env, token = bench_server_env(data_dir, REDIS_URL=os.environ.get("BENCH_REDIS_URL"))
    for n in sizes:
        for rate in rates_for(n):
            port = free_port()
            ready = mp.Event()
            bare = mp.Process(target=bare_server_main, args=(port, ready), daemon=True)
            bare.start()
            ready.wait(30)
            urls = [f"ws://127.0.0.1:{port}/sub"] * n
            row = measure(
                "bare websockets", urls, None, rate, lambda r, t, p=port: publish_bare(f"ws://127.0.0.1:{p}", r, t)
            )
            bare.terminate()
            rows.append(row)
            print(_fmt(row), flush=True)
            for server_name in servers:
                with ServerProcess(env, server=server_name) as server:
                    session_id, urls = spectator_setup(server, token, n)
                    row = measure(
                        f"Spectator ({server_name})",
                        urls,
                        server.url,
                        rate,
                        lambda r, t, s=server, sid=session_id: publish_spectator(s.ws_url, token, sid, r, t),
                        server.process.pid,
                    )
                rows.append(row)
                print(_fmt(row), flush=True)
    return rows


def run_redis_layers(n: int, rates: list[float], layers: list[str], redis_url: str) -> list[dict]:
    """Trainer on one uvicorn process, spectators on another, sharing rooms through Redis."""
    rows = []
    for layer in layers:
        data_dir = Path(tempfile.mkdtemp(prefix=f"spectator-fanout-{layer}-"))
        env, token = bench_server_env(data_dir, REDIS_URL=redis_url, SPECTATOR_REDIS_LAYER=layer)
        for rate in rates:
            with ServerProcess(env, server="uvicorn") as trainer_side, ServerProcess(env, server="uvicorn") as viewers:
                session_id, urls = spectator_setup(viewers, token, n)
                row = measure(
                    f"2 processes, Redis {layer}",
                    urls,
                    viewers.url,
                    rate,
                    lambda r, t, s=trainer_side, sid=session_id, tok=token: publish_spectator(s.ws_url, tok, sid, r, t),
                )
            rows.append(row)
            print(_fmt(row), flush=True)
    return rows


def _fmt(row: dict) -> str:
    return (
        f"{row['kind']:<22} n={row['spectators']:>5} points/s={row['rate']:>6.0f} "
        f"deliveries/s={row['deliveries_per_s']:>9.0f} point-deliveries/s={row['points_per_s']:>8.0f} "
        f"p50={row['p50_ms']:>7.1f} ms "
        f"p99={row['p99_ms']:>7.1f} ms lost={row['lost_points']}"
    )


def report(rows: list[dict]) -> str:
    lines = [
        "One trainer → N spectators on loopback. The bare server sends two messages per metric point",
        "(`training_metrics`, `graph_update`, ~300-450 bytes); Spectator sends one `training_metrics` per point",
        "and one `graph_update` per ingested batch (several points when the trainer batches), so messages per",
        "second (deliveries/s) understate what Spectator delivers: setups are compared on metric points",
        "delivered per second, all spectators together (point-deliveries/s). Latency: trainer timestamp →",
        f"parsed by the spectator client. {WORKERS} client processes share the machine with the server.",
        f"A step passes when p99 < {P99_LIMIT_MS:.0f} ms and no metric point is lost.",
        "",
        "| server | spectators | offered points/s | deliveries/s | point-deliveries/s | p50 ms | p99 ms"
        " | lost points | passes |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in rows:
        passes = row["p99_ms"] < P99_LIMIT_MS and row["lost_points"] == 0
        lines.append(
            f"| {row['kind']} | {row['spectators']} | {row['rate']:.0f} | {row['deliveries_per_s']:.0f} | "
            f"{row['points_per_s']:.0f} | "
            f"{row['p50_ms']:.1f} | {row['p99_ms']:.1f} | {row['lost_points']} | {'yes' if passes else 'no'} |"
        )
    lines += ["", "Best passing rate of metric points delivered per setup:", ""]
    best: dict[tuple, float] = {}
    for row in rows:
        if row["p99_ms"] < P99_LIMIT_MS and row["lost_points"] == 0:
            key = (row["kind"], row["spectators"])
            best[key] = max(best.get(key, 0.0), row["points_per_s"])
    for (kind, n), rate in sorted(best.items(), key=lambda item: (item[0][1], item[0][0])):
        ceiling = best.get(("bare websockets", n))
        share = f" ({rate / ceiling:.0%} of bare websockets)" if ceiling and kind != "bare websockets" else ""
        lines.append(f"- {kind}, {n} spectators: {rate:,.0f} point-deliveries/s{share}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 spectators only, one rate")
    parser.add_argument("--servers", default="uvicorn,daphne", help="comma-separated: uvicorn, daphne")
    parser.add_argument("--spectators", type=int, help="one room size only (with --rates)")
    parser.add_argument("--rates", help="comma-separated metric points/s for --spectators")
    parser.add_argument(
        "--redis-layers",
        metavar="URL",
        help="instead: compare channels-redis core and pub/sub across two processes (Redis at URL)",
    )
    args = parser.parse_args()
    if args.redis_layers:
        rows = run_redis_layers(100, [100, 300], ["core", "pubsub"], args.redis_layers)
        write_section("Fan-out across processes (channels-redis layers)", report(rows))
        return
    if args.spectators:
        rates = [float(r) for r in (args.rates or "10").split(",")]
        rows = run([args.spectators], lambda n: rates, args.servers.split(","))
    elif args.quick:
        rows = run([100], lambda n: [100], args.servers.split(","))
    else:
        rates = {100: [100, 300, 600, 1200], 1000: [10, 30, 60, 120]}
        rows = run([100, 1000], lambda n: rates[n], args.servers.split(","))
    write_section("Fan-out", report(rows))
    print(f"\nwrote {Path(__file__).parent / 'RESULTS.md'}")


if __name__ == "__main__":
    main()
