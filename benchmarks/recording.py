"""Recording benchmark: one episode's decisions and frames, as files vs as database rows.

    .venv/bin/python benchmarks/recording.py              # SQLite, and PostgreSQL if reachable
    BENCH_DATABASE_URL=postgres://… .venv/bin/python benchmarks/recording.py

An episode of 2,000 steps, a decision each (~250 bytes of JSON) and a ~3 KB PNG frame every
3rd step, stored two ways:

- file: ``metrics.recording_services.recording_append`` as shipped (one append-only file per
  episode, one ``O_APPEND`` write and one counter update per batch);
- rows: a prototype table with one row per decision or frame (the body as a blob), plus the
  same counter update per batch.

Each is written one message at a time (what an inline writer sees) and in batches of 50
(what the writer thread merges under load), and read back as a replay loads it. Bytes on disk:
the files' sizes vs the table's growth (SQLite pages after a WAL checkpoint; PostgreSQL's
``pg_total_relation_size``, indexes and TOAST included).
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402

STEPS = 2000
FRAME_EVERY = 3
FRAME_BYTES = 3000
BATCH = 50
DEFAULT_POSTGRES = "postgres://postgres@127.0.0.1:5432/spectator_bench_recording"


def episode_items(episode: int) -> list[tuple[str, object]]:
    """The episode's messages in arrival order: ("decision", dict) and ("frame", (header, image))."""
    items: list[tuple[str, object]] = []
    start = 1_700_000_000.0
    for step in range(STEPS):
        p = [0.1 + (step % 7) / 100, 0.2, 0.3, 0.0]
        p[3] = 1.0 - sum(p[:3])
        items.append(
            (
                "decision",
                {
                    "action_probabilities": {"left": p[0], "right": p[1], "up": p[2], "down": p[3]},
                    "state_values": 12.5 + step / 1000,
                    "q_values": {"left": 1.25, "right": 2.5 + step / 100, "up": 0.75, "down": -1.0},
                    "selected_action": "right",
                    "episode": episode,
                    "step": step,
                    "timestamp": start + step * 0.02,
                },
            )
        )
        if step % FRAME_EVERY == 0:
            image = b"\x89PNG\r\n\x1a\n" + os.urandom(FRAME_BYTES - 8)
            header = {"type": "frame", "mime": "image/png", "episode": episode, "step": step, "timestamp": start}
            items.append(("frame", (header, image)))
    return items


def batches(items, size):
    for i in range(0, len(items), size):
        yield items[i : i + size]


# --- Runs inside a configured Django process (one per database) -------------------------------

ROWS_TABLE = "bench_recorded_record"


def measure() -> dict:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.utils import timezone

    call_command("migrate", verbosity=0)
    from django.contrib.auth import get_user_model

    from metrics import recordings
    from metrics.models import RecordedEpisode
    from metrics.recording_selectors import timeline_build
    from metrics.recording_services import _counter_updates, _discard, _EpisodeBatch, recording_append
    from metrics.services import training_session_create

    user, _ = get_user_model().objects.get_or_create(username="bench")
    session, _ = training_session_create(owner=user, id=f"bench-{time.time_ns()}")
    records = sum(1 for _ in episode_items(0))
    results: dict = {"records": records}

    def file_write(episode: int, size: int) -> float:
        items = episode_items(episode)
        start = time.perf_counter()
        for group in batches(items, size):
            recording_append(
                training_session_id=session.pk,
                decisions=[item for kind, item in group if kind == "decision"],
                frames=[item for kind, item in group if kind == "frame"],
            )
        return time.perf_counter() - start

    # Each way twice (the better of two: a shared machine is noisy), alternating with the rows below.
    results["file_per_message_s"] = file_write(1, 1)
    results["file_batched_s"] = file_write(2, BATCH)
    results["file_bytes"] = recordings.file_size(recordings.episode_path(session.pk, 2))

    def file_load():
        timeline = timeline_build(session.pk, 2, recordings.episode_path(session.pk, 2))
        image = timeline.image(timeline.latest_frame(timeline.length - 1))
        assert timeline.length == STEPS and image is not None

    results["file_load_s"] = best_of(3, file_load)

    blob = "bytea" if connection.vendor == "postgresql" else "blob"
    serial = "bigserial primary key" if connection.vendor == "postgresql" else "integer primary key autoincrement"
    with connection.cursor() as cursor:
        cursor.execute(
            f"create table {ROWS_TABLE} (id {serial}, training_session_id varchar(64) not null, "
            f"episode bigint not null, step bigint, kind char(1) not null, body {blob} not null)"
        )
        cursor.execute(f"create index {ROWS_TABLE}_by_step on {ROWS_TABLE} (training_session_id, episode, step)")
    insert = f"insert into {ROWS_TABLE} (training_session_id, episode, step, kind, body) values (%s, %s, %s, %s, %s)"

    def row_of(episode, kind, item):
        if kind == "decision":
            return (session.pk, episode, item["step"], "D", recordings.decision_record(item)[5:])
        header, image = item
        return (session.pk, episode, header["step"], "F", recordings.frame_record(header, image)[5:])

    def rows_write(episode: int, size: int) -> float:
        items = episode_items(episode)
        RecordedEpisode.objects.create(training_session=session, episode=episode, path="-")
        start = time.perf_counter()
        for group in batches(items, size):
            batch = _EpisodeBatch()
            rows = [row_of(episode, kind, item) for kind, item in group]
            for _session, _episode, step, kind, body in rows:
                batch.add(body, step=step, timestamp=None, frame=kind == "F")
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.executemany(insert, rows)
                RecordedEpisode.objects.filter(training_session=session, episode=episode).update(
                    **_counter_updates(batch, timezone.now())
                )
        return time.perf_counter() - start

    size_before = table_bytes(connection)
    results["rows_per_message_s"] = rows_write(11, 1)
    results["rows_batched_s"] = rows_write(12, BATCH)
    results["file_per_message_s"] = min(results["file_per_message_s"], file_write(3, 1))
    results["file_batched_s"] = min(results["file_batched_s"], file_write(4, BATCH))
    results["rows_per_message_s"] = min(results["rows_per_message_s"], rows_write(13, 1))
    results["rows_batched_s"] = min(results["rows_batched_s"], rows_write(14, BATCH))
    results["rows_bytes"] = (table_bytes(connection) - size_before) / 4

    def rows_load():
        with connection.cursor() as cursor:
            cursor.execute(
                f"select kind, step, body from {ROWS_TABLE} where training_session_id = %s and episode = %s "
                "order by step, id",
                [session.pk, 12],
            )
            loaded = []
            for kind, step, body in cursor.fetchall():
                body = bytes(body)
                # Parsed as the file reader parses: a decision's JSON, a frame's header (the image kept as bytes).
                if kind == "D":
                    loaded.append((step, orjson.loads(body)))
                else:
                    (length,) = struct.unpack(">I", body[:4])
                    loaded.append((step, orjson.loads(body[4 : 4 + length]), body[4 + length :]))
        assert len(loaded) == records

    results["rows_load_s"] = best_of(3, rows_load)

    # Retention: drop one episode (its counters row too) and see what the disk gets back.
    row = RecordedEpisode.objects.get(training_session=session, episode=2)
    start = time.perf_counter()
    _discard(row.pk, row.path, timezone.now())
    results["file_delete_s"] = time.perf_counter() - start
    before = table_bytes(connection)
    start = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"delete from {ROWS_TABLE} where training_session_id = %s and episode = %s", [session.pk, 12])
        RecordedEpisode.objects.filter(training_session=session, episode=12).update(discarded_at=timezone.now())
    results["rows_delete_s"] = time.perf_counter() - start
    results["rows_freed_bytes"] = before - table_bytes(connection, reclaimed=True)
    results["vendor"] = connection.vendor
    print(json.dumps(results))
    return results


def best_of(runs: int, work) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def table_bytes(connection, *, reclaimed: bool = False) -> int:
    """What the rows take on disk: SQLite pages after a WAL checkpoint, or PostgreSQL's relation sizes.

    ``reclaimed``: what the disk really gives back after a delete (no VACUUM): SQLite keeps
    freed pages in its file, PostgreSQL keeps dead tuples until a vacuum.
    """
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"select pg_total_relation_size('{ROWS_TABLE}')")
            return cursor.fetchone()[0]
        cursor.execute("pragma wal_checkpoint(truncate)")
        cursor.execute("pragma page_count")
        pages = cursor.fetchone()[0]
        if not reclaimed:
            cursor.execute("pragma freelist_count")
            pages -= cursor.fetchone()[0]
        cursor.execute("pragma page_size")
        return pages * cursor.fetchone()[0]


# --- The driver -------------------------------------------------------------------------------


def run_measure(database_url: str | None) -> dict:
    data_dir = tempfile.mkdtemp(prefix="spectator-recording-")
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(
        SPECTATOR_DATA_DIR=data_dir,
        SPECTATOR_SWEEP_INTERVAL="0",
        SPECTATOR_RECORDING_MODE="all",
        SPECTATOR_RECORDING_MAX_BYTES=str(1 << 40),
        DJANGO_SETTINGS_MODULE="spectator_site.settings",
        PYTHONPATH=str(ROOT),
    )
    if database_url:
        env["DATABASE_URL"] = database_url
    result = subprocess.run(
        [sys.executable, __file__, "--measure"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    if result.returncode != 0:
        raise RuntimeError(result.stderr)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    from benchmarks.databases import bench_databases
    from benchmarks.results import write_section

    databases = bench_databases(DEFAULT_POSTGRES)
    table = []
    for name, url in databases:
        r = run_measure(url)
        n = records = r["records"]
        freed = {"file": r["file_bytes"], "rows": r["rows_freed_bytes"]}
        for store, prefix in (("file per episode", "file"), ("database rows", "rows")):
            row = (
                name,
                store,
                n / r[f"{prefix}_per_message_s"],
                n / r[f"{prefix}_batched_s"],
                r[f"{prefix}_bytes"] / 1e6,
                r[f"{prefix}_load_s"] * 1000,
                r[f"{prefix}_delete_s"] * 1000,
                max(0, freed[prefix]) / 1e6,
            )
            table.append(row)
            print(
                f"{name:<10} {store:<17} {row[2]:>7.0f}/s one at a time {row[3]:>7.0f}/s batched "
                f"{row[4]:5.2f} MB  load {row[5]:5.1f} ms  delete {row[6]:5.1f} ms (frees {row[7]:.2f} MB)"
            )
    payload = sum(
        len(json.dumps(item, separators=(",", ":"))) if kind == "decision" else len(item[1]) + 90
        for kind, item in episode_items(0)
    )
    lines = [
        f"One episode: {STEPS:,} steps with a decision each and a {FRAME_BYTES:,}-byte PNG every",
        f"{FRAME_EVERY}rd step ({records:,} records, {payload / 1e6:.2f} MB of payload). Written one",
        f"message at a time and in batches of {BATCH} (each batch also updates the episode's counters row);",
        "'load' reads the episode back as a replay does; 'delete' drops it as retention does, and 'freed' is",
        "what the disk gets back without a VACUUM. Each write figure is the better of two runs.",
        "",
        "| database | storage | records/s, one at a time | records/s, batched | MB on disk | load (ms) "
        "| delete (ms) | MB freed |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        *(
            f"| {r[0]} | {r[1]} | {r[2]:,.0f} | {r[3]:,.0f} | {r[4]:.2f} | {r[5]:.1f} | {r[6]:.1f} | {r[7]:.2f} |"
            for r in table
        ),
        "",
        "Run: `.venv/bin/python benchmarks/recording.py`.",
    ]
    write_section("Recording", "\n".join(lines))


if __name__ == "__main__":
    if "--measure" in sys.argv:
        measure()
    else:
        main()
