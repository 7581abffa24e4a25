"""Real server processes for end-to-end tests: migrate a fresh data dir, serve on a free port.

Readiness is waited on by polling ``/healthz`` (the event), bounded by a deadline.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
# End-to-end tests join and request many times a second; the throttles have their own tests.
RELAXED_THROTTLES = {
    "SPECTATOR_THROTTLE_JOIN": "100000/min",
    "SPECTATOR_THROTTLE_USER": "1000000/min",
    "SPECTATOR_THROTTLE_ANON": "100000/min",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(data_dir: Path, **overrides) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")}
    env.update(
        SPECTATOR_DATA_DIR=str(data_dir),
        SPECTATOR_SWEEP_INTERVAL="0",
        DJANGO_SETTINGS_MODULE="spectator_site.settings",
        PYTHONUNBUFFERED="1",
    )
    env.update({k: v for k, v in overrides.items() if v is not None})
    return env


def python_json(code: str, env: dict, *, timeout: float = 60) -> dict:
    """Run ``code`` in a fresh interpreter with ``env`` and return the JSON its last line prints."""
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


async def next_of_type(ws, wanted: str, timeout: float = 10.0) -> dict:
    """The next text message of type ``wanted`` on a ``websockets`` client connection."""
    async with asyncio.timeout(timeout):
        while True:
            raw = await ws.recv()
            if isinstance(raw, str) and (message := json.loads(raw))["type"] == wanted:
                return message


def manage(env: dict, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout.strip()


class ServerProcess:
    """One daphne (or uvicorn) process serving spectator_site.asgi on 127.0.0.1."""

    def __init__(self, env: dict, *, server: str = "daphne", port: int | None = None, log_path: Path | None = None):
        self.env = env
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        self.server = server
        self.log_path = log_path or Path(env["SPECTATOR_DATA_DIR"]) / f"server-{self.port}.log"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> ServerProcess:
        if self.server == "daphne":
            cmd = [str(VENV_BIN / "daphne"), "-b", "127.0.0.1", "-p", str(self.port), "spectator_site.asgi:application"]
        else:
            cmd = [
                str(VENV_BIN / "uvicorn"),
                "spectator_site.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--no-access-log",
                "--ws-per-message-deflate",
                "false",
            ]
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)  # polling interval while waiting for readiness, bounded by the deadline
        self.stop()
        raise RuntimeError(f"server did not become healthy in {timeout}s:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if getattr(self, "_log", None):
            self._log.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
