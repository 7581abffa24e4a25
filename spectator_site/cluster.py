"""Run Spectator as N server processes behind nginx on one machine, and keep them running.

    .venv/bin/python -m spectator_site.cluster --processes 4 --port 8000

Rooms are shared through Redis and state lives in the database, so every process can serve
any spectator: set REDIS_URL (required for more than one process) and DATABASE_URL
(PostgreSQL). The launcher migrates, collects static files for nginx to serve from disk,
starts the processes (uvicorn: chosen by the fan-out benchmark, see README) on loopback ports,
renders deploy/nginx.conf.template and runs nginx in front. A process that dies is started
again; SIGTERM or Ctrl-C stops everything. What runs where is written to
``<data dir>/cluster/cluster.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "deploy" / "nginx.conf.template"
RESTART_BACKOFF_MAX = 30.0
HEALTH_TIMEOUT = 60.0


@dataclass
class Worker:
    port: int
    process: subprocess.Popen | None = None
    restarts: int = 0
    next_start: float = 0.0
    started_at: float = field(default_factory=time.monotonic)


class Cluster:
    def __init__(self, *, processes: int, host: str, port: int, first_port: int, proxy: str, data_dir: Path):
        self.host, self.port, self.proxy = host, port, proxy
        self.state_dir = data_dir / "cluster"
        self.workers = [Worker(first_port + i) for i in range(processes)]
        self.nginx: subprocess.Popen | None = None
        self.stopping = False
        self.python = sys.executable
        self.bin = Path(sys.executable).parent

    # --- set-up ---------------------------------------------------------------------------

    def check(self) -> None:
        if len(self.workers) > 1 and not os.environ.get("REDIS_URL"):
            sys.exit("More than one process needs REDIS_URL (redis://…): processes share rooms through Redis.")
        if not os.environ.get("DATABASE_URL"):
            print("warning: DATABASE_URL is not set; several processes will share one SQLite file", file=sys.stderr)
        if self.proxy == "nginx" and shutil.which("nginx") is None:
            sys.exit("nginx not found: install it (Debian: apt-get install nginx) or run with --proxy none.")
        for worker in self.workers:
            if _port_taken(worker.port):
                sys.exit(f"Port {worker.port} is taken; choose --first-port.")

    def prepare(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._manage("migrate", "--noinput")
        self._manage("collectstatic", "--noinput", "--clear")

    def _manage(self, *args: str) -> None:
        subprocess.run([self.python, str(ROOT / "manage.py"), *args], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)

    # --- processes ------------------------------------------------------------------------

    def _worker_env(self) -> dict:
        env = dict(os.environ)
        if self.proxy == "nginx":
            # nginx adds the client's address to X-Forwarded-For: rate limits key on it.
            env.setdefault("SPECTATOR_NUM_PROXIES", "1")
        return env

    def start_worker(self, worker: Worker) -> None:
        worker.process = subprocess.Popen(
            [
                str(self.bin / "uvicorn"),
                "spectator_site.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(worker.port),
                "--no-access-log",
                "--ws-per-message-deflate",
                "false",
                "--proxy-headers",
                "--forwarded-allow-ips",
                "127.0.0.1",
            ],
            cwd=ROOT,
            env=self._worker_env(),
        )
        worker.started_at = time.monotonic()

    def start_nginx(self) -> None:
        upstreams = "\n".join(f"        server 127.0.0.1:{w.port} max_fails=1 fail_timeout=2s;" for w in self.workers)
        conf = Template(TEMPLATE.read_text()).substitute(
            listen=f"{self.host}:{self.port}",
            upstreams=upstreams,
            static_root=_static_root(),
            prefix=str(self.state_dir),
        )
        path = self.state_dir / "nginx.conf"
        path.write_text(conf)
        self.nginx = subprocess.Popen(
            ["nginx", "-e", "stderr", "-p", str(self.state_dir), "-c", str(path), "-g", "daemon off;"]
        )

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + HEALTH_TIMEOUT
        for worker in self.workers:
            while not _healthy(worker.port):
                if worker.process.poll() is not None:
                    sys.exit(f"Server process on port {worker.port} exited with {worker.process.returncode}.")
                if time.monotonic() > deadline:
                    sys.exit(f"Server process on port {worker.port} not healthy after {HEALTH_TIMEOUT:.0f} s.")
                time.sleep(0.1)

    def wait_proxy(self) -> None:
        deadline = time.monotonic() + HEALTH_TIMEOUT
        while not _healthy(self.port, self.host):
            if self.nginx.poll() is not None:
                sys.exit(f"nginx exited with {self.nginx.returncode}.")
            if time.monotonic() > deadline:
                sys.exit(f"nginx not answering on {self.host}:{self.port} after {HEALTH_TIMEOUT:.0f} s.")
            time.sleep(0.1)

    def write_state(self) -> None:
        state = {
            "url": f"http://{self.host}:{self.port}" if self.proxy == "nginx" else None,
            "launcher_pid": os.getpid(),
            "nginx_pid": self.nginx.pid if self.nginx else None,
            "workers": [
                {"port": w.port, "pid": w.process.pid if w.process else None, "restarts": w.restarts}
                for w in self.workers
            ],
        }
        tmp = self.state_dir / "cluster.json.tmp"
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.state_dir / "cluster.json")

    def supervise(self) -> int:
        """Restart workers that die (with backoff); stop everything when asked or when nginx dies."""
        while not self.stopping:
            changed = False
            now = time.monotonic()
            for worker in self.workers:
                if worker.process is not None and worker.process.poll() is not None:
                    code = worker.process.returncode
                    lived = now - worker.started_at
                    worker.restarts += 1
                    delay = 0.0 if lived > 10 else min(RESTART_BACKOFF_MAX, 0.5 * 2 ** min(worker.restarts, 6))
                    print(f"server process on port {worker.port} exited ({code}); restarting in {delay:.1f} s")
                    worker.process, worker.next_start = None, now + delay
                if worker.process is None and now >= worker.next_start:
                    self.start_worker(worker)
                    changed = True
            if changed:
                self.write_state()
            if self.nginx is not None and self.nginx.poll() is not None:
                print(f"nginx exited ({self.nginx.returncode}); stopping", file=sys.stderr)
                self.stop()
                return 1
            time.sleep(0.2)
        return 0

    def stop(self, *_args) -> None:
        self.stopping = True
        running = [w.process for w in self.workers if w.process is not None]
        if self.nginx is not None:
            running.append(self.nginx)
        for process in running:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for process in running:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def run(self) -> int:
        self.check()
        self.prepare()
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        try:
            for worker in self.workers:
                self.start_worker(worker)
            self.wait_healthy()
            if self.proxy == "nginx":
                self.start_nginx()
                self.wait_proxy()
            self.write_state()
            where = f"http://{self.host}:{self.port}/" if self.proxy == "nginx" else "ports "
            ports = ", ".join(str(w.port) for w in self.workers)
            print(f"Spectator: {len(self.workers)} process(es) on {ports}; serving {where}", flush=True)
            return self.supervise()
        finally:
            if not self.stopping:
                self.stop()


def _static_root() -> str:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spectator_site.settings")
    from django.conf import settings

    return str(Path(settings.STATIC_ROOT).resolve())


def _port_taken(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _healthy(port: int, host: str = "127.0.0.1") -> bool:
    host = "127.0.0.1" if host in ("0.0.0.0", "") else host
    try:
        with socket.create_connection((host, port), timeout=2) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            return sock.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 2, help="server processes (default: cores)")
    parser.add_argument("--host", default="127.0.0.1", help="address nginx listens on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port nginx listens on (default 8000)")
    parser.add_argument("--first-port", type=int, default=8101, help="the processes use this port and the next ones")
    parser.add_argument("--proxy", choices=["nginx", "none"], default="nginx", help="none: run the processes only")
    args = parser.parse_args(argv)
    if args.processes < 1:
        parser.error("--processes must be at least 1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spectator_site.settings")
    from django.conf import settings

    cluster = Cluster(
        processes=args.processes,
        host=args.host,
        port=args.port,
        first_port=args.first_port,
        proxy=args.proxy,
        data_dir=Path(settings.DATA_DIR),
    )
    return cluster.run()


if __name__ == "__main__":
    sys.exit(main())
