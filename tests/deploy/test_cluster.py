"""The documented deployment: N server processes behind nginx (``python -m spectator_site.cluster``),
static files from disk, WebSockets through the proxy, a killed process started again, and a
production configuration that ``manage.py check --deploy`` finds clean."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest
import websockets

from tests.support.redis_server import RedisServer, redis_server_binary
from tests.support.servers import RELAXED_THROTTLES, ROOT, free_port, manage, next_of_type, server_env

pytestmark = pytest.mark.timeout(180)


def nginx_binary() -> str:
    binary = shutil.which("nginx") or (Path("/usr/sbin/nginx").exists() and "/usr/sbin/nginx")
    if not binary:
        if os.environ.get("CI"):
            pytest.fail("nginx is required in CI (.ci/run installs the Debian package)")
        pytest.skip("needs nginx (Debian package nginx) for the deployment test")
    return binary


def two_free_ports() -> int:
    """Two consecutive free ports (the cluster's processes use consecutive ports), below the
    ephemeral range (32768 and up): an outgoing connection cannot take the second one between
    this check and the cluster binding it, as happened once in CI."""
    for _ in range(200):
        port = random.randrange(20000, 32000)
        if _bindable(port) and _bindable(port + 1):
            return port
    raise RuntimeError("no two consecutive free ports")


def _bindable(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def wait_until(condition, timeout: float = 60.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} not reached within {timeout} s"
        time.sleep(0.1)


@pytest.fixture
def cluster():
    nginx_binary()
    # nginx's workers run as an unprivileged user: the collected static files must be readable.
    tmp_path = Path(tempfile.mkdtemp(prefix="spectator-cluster-"))
    tmp_path.chmod(0o755)
    with RedisServer(redis_server_binary()) as redis:
        env = server_env(tmp_path, REDIS_URL=redis.url, **RELAXED_THROTTLES)
        manage(env, "migrate", "--noinput")
        token = manage(env, "create_api_token", "trainer")
        port, first_port = free_port(), two_free_ports()
        env["PATH"] = f"{Path(sys.executable).parent}:/usr/sbin:{env.get('PATH', '')}"
        log = (tmp_path / "cluster.log").open("w")
        launcher = subprocess.Popen(
            [sys.executable, "-m", "spectator_site.cluster", "--processes", "2", "--port", str(port),
             "--first-port", str(first_port)],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        state_file = tmp_path / "cluster" / "cluster.json"
        try:
            wait_until(lambda: state_file.exists() or launcher.poll() is not None, what="the cluster's start")
            assert launcher.poll() is None, (tmp_path / "cluster.log").read_text()
            yield launcher, f"http://127.0.0.1:{port}", token, state_file
        finally:
            if launcher.poll() is None:
                launcher.send_signal(signal.SIGTERM)
                try:
                    launcher.wait(30)
                except subprocess.TimeoutExpired:
                    launcher.kill()
            log.close()
            shutil.rmtree(tmp_path, ignore_errors=True)


def answers(url: str) -> bool:
    try:
        return httpx.get(url).status_code == 200
    except httpx.TransportError:
        return False


def read_state(state_file: Path) -> dict:
    return json.loads(state_file.read_text())


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_processes_behind_nginx_serve_rooms_static_files_and_come_back_when_killed(cluster):
    launcher, url, token, state_file = cluster
    headers = {"Authorization": f"Bearer {token}"}
    health = httpx.get(f"{url}/healthz")
    assert health.status_code == 200 and health.headers["server"].startswith("nginx")

    static = httpx.get(f"{url}/static/spectator/live.js", headers={"Accept-Encoding": "gzip"})
    assert static.status_code == 200
    # Served by nginx from the collected files: compressed, cacheable, with a validator.
    assert static.headers["content-encoding"] == "gzip"
    assert "max-age=" in static.headers["cache-control"] and static.headers.get("etag")
    assert "LiveRoom" in static.text

    api = httpx.Client(base_url=url, headers=headers)
    api.post("/api/v1/sessions/", json={"id": "deployed"}).raise_for_status()
    room = api.post("/api/v1/rooms/", json={"training_session_id": "deployed"}).json()
    joined = httpx.post(f"{url}/api/v1/rooms/{room['room_code']}/join/", json={"display_name": "Vi"}).json()
    assert joined["websocket_url"].startswith(f"ws://127.0.0.1:{url.rsplit(':', 1)[1]}/ws/rooms/")
    async with websockets.connect(joined["websocket_url"], origin=url) as spectator:
        await next_of_type(spectator, "snapshot")
        point = {"stream": "t", "seq": 1, "timestamp": time.time(), "episode": 1, "current_reward": 4.5}
        api.post("/api/v1/sessions/deployed/ingest/", json={"points": [point]}).raise_for_status()
        assert (await next_of_type(spectator, "training_metrics"))["data"]["current_reward"] == 4.5

    before = read_state(state_file)
    victim = before["workers"][0]
    os.kill(victim["pid"], signal.SIGKILL)
    # Requests keep working through the other process while the launcher starts a new one.
    assert httpx.get(f"{url}/api/v1/rooms/{room['room_code']}/", headers=headers).status_code == 200
    after = wait_until(lambda: (s := read_state(state_file))["workers"][0]["restarts"] == 1 and s, what="the restart")
    assert after["workers"][0]["pid"] != victim["pid"]
    wait_until(lambda: answers(f"http://127.0.0.1:{victim['port']}/healthz"), what="the new process's health")
    api.close()

    pids = [w["pid"] for w in after["workers"]] + [after["nginx_pid"]]
    launcher.send_signal(signal.SIGTERM)
    assert launcher.wait(30) == 0
    assert not any(pid_alive(pid) for pid in pids)


def test_more_than_one_process_needs_redis(tmp_path):
    env = {k: v for k, v in server_env(tmp_path).items() if k != "REDIS_URL"}
    result = subprocess.run(
        [sys.executable, "-m", "spectator_site.cluster", "--processes", "2", "--proxy", "none"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0 and "REDIS_URL" in result.stderr


def test_production_settings_pass_the_deployment_checklist(tmp_path):
    env = server_env(tmp_path, SPECTATOR_TLS="1", SECRET_KEY="x" * 30 + "-production-key-" + "y" * 30)
    env.pop("DEBUG", None)
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
