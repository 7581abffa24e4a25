"""The README's run command: the server, and (unless told not to) the demo learning in a public room."""

import json
import os
import signal
import subprocess
import time

import httpx

from spectator_demo import ROOM_NAME
from tests.support.servers import ROOT, free_port, server_env


def run_command(tmp_path, *args, **env_overrides):
    port = free_port()
    env = server_env(tmp_path, SPECTATOR_PORT=str(port), **env_overrides)
    log = open(tmp_path / "run.log", "wb")  # noqa: SIM115 - closed by the caller's stop()
    process = subprocess.Popen(
        ["./run", *args], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    return process, f"http://127.0.0.1:{port}", log


def wait_until(predicate, timeout, what, process, tmp_path):
    """Poll ``predicate`` (an HTTP check) until it holds; fail early if ./run exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"./run exited {process.returncode}:\n{(tmp_path / 'run.log').read_text()}"
        try:
            result = predicate()
            if result:
                return result
        except httpx.HTTPError:
            pass
        time.sleep(0.2)  # polling interval, bounded by the deadline
    raise AssertionError(f"timed out waiting for {what}:\n{(tmp_path / 'run.log').read_text()}")


def stop(process, log):
    """SIGTERM ./run as a service manager would; it must stop its children and exit."""
    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(timeout=30)
    finally:
        log.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return code
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)
    raise AssertionError("./run left processes behind")


def test_run_starts_the_server_and_the_demo_learning_in_a_public_room(tmp_path):
    process, url, log = run_command(tmp_path)
    try:

        def demo_room_progress():
            rooms = httpx.get(f"{url}/api/v1/rooms/public/", timeout=5).json()["results"]
            room = next((r for r in rooms if r["name"] == ROOM_NAME), None)
            return room if room and (room["progress"]["episode"] or 0) >= 3 else None

        room = wait_until(demo_room_progress, 120, "the demo's third episode", process, tmp_path)
        assert ROOM_NAME in httpx.get(f"{url}/", timeout=5).text  # named on the lobby
        assert room["access_control"]["access_level"] == "public"
        config = tmp_path / "demo.json"
        assert oct(config.stat().st_mode & 0o777) == "0o600"
        assert json.loads(config.read_text())["room_code"] == room["room_code"]
    finally:
        code = stop(process, log)
    assert code == 143
    assert "demo: stopped after" in (tmp_path / "run.log").read_text()


def test_the_demo_can_be_left_out(tmp_path):
    process, url, log = run_command(tmp_path, SPECTATOR_DEMO="0")
    try:
        wait_until(lambda: httpx.get(f"{url}/healthz", timeout=5).status_code == 200, 60, "healthz", process, tmp_path)
        assert httpx.get(f"{url}/api/v1/rooms/public/", timeout=5).json()["results"] == []
        assert not (tmp_path / "demo.json").exists()
    finally:
        stop(process, log)
