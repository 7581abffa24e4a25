"""The databases a benchmark measures: SQLite always, PostgreSQL when it answers (created afresh)."""

from __future__ import annotations

import os


def postgres_fresh(url: str) -> bool:
    """Create the benchmark's database afresh (dropped first: a big table slows inserts); False if unreachable."""
    try:
        import psycopg

        admin = url.rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin, autocommit=True, connect_timeout=3) as conn:
            name = url.rsplit("/", 1)[1]
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        return True
    except Exception:  # noqa: BLE001 - any failure means: not here
        return False


def bench_databases(default_postgres: str) -> list[tuple[str, str | None]]:
    """``[(name, DATABASE_URL or None for SQLite)]``: PostgreSQL from BENCH_DATABASE_URL or the default."""
    databases: list[tuple[str, str | None]] = [("SQLite", None)]
    postgres = os.environ.get("BENCH_DATABASE_URL", default_postgres)
    if postgres_fresh(postgres):
        databases.append(("PostgreSQL", postgres))
    else:
        print(f"PostgreSQL not reachable at {postgres}; measuring SQLite only")
    return databases
