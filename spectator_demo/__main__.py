"""Run the demo trainer: ``python -m spectator_demo --url http://127.0.0.1:8000 --config var/demo.json``.

The token, training session and room come from ``--config`` (written by ``manage.py
demo_setup``), or from ``--token``/``$SPECTATOR_TOKEN`` and the defaults. When the room is
gone (closed, expired) the trainer opens a new public one. Stops cleanly on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

import httpx

from spectator_client import (
    AccessLevel,
    RoomAccessControl,
    RoomExpired,
    RoomNotFound,
    SpectatorManager,
    SpectatorStream,
)
from spectator_demo import ALGORITHM, ROOM_NAME, SEATS, TRAINING_SESSION_ID
from spectator_demo.trainer import TrainerConfig, train

logger = logging.getLogger("spectator_demo")
SHUTDOWN_SECONDS = 3.0


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m spectator_demo", description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("SPECTATOR_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--config", type=Path, help="JSON from manage.py demo_setup (token, session, room)")
    parser.add_argument("--token", help="API token (default: the config's, else $SPECTATOR_TOKEN)")
    parser.add_argument("--session", help=f"training session id (default: the config's, else {TRAINING_SESSION_ID})")
    parser.add_argument("--room", help="room code to stream into (default: the config's; a new room when gone)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--steps-per-second", type=float, default=50.0, help="0: as fast as possible")
    parser.add_argument("--frame-hz", type=float, default=10.0)
    parser.add_argument("--decision-hz", type=float, default=15.0)
    parser.add_argument("--generation-steps", type=int, default=45_000, help="relearn from scratch after N steps")
    parser.add_argument("--episodes", type=int, default=None, help="stop after N episodes (default: never)")
    parser.add_argument("--wait", type=float, default=60.0, help="seconds to wait for the server to be healthy")
    args = parser.parse_args(argv)
    config = json.loads(args.config.read_text()) if args.config else {}
    args.token = args.token or config.get("token") or os.environ.get("SPECTATOR_TOKEN")
    args.session = args.session or config.get("training_session_id") or TRAINING_SESSION_ID
    args.room = args.room or config.get("room_code")
    args.url = args.url.rstrip("/")
    if not args.token:
        parser.error("no API token: pass --token, --config or set SPECTATOR_TOKEN")
    return args


def server_wait(url: str, timeout: float, stop: threading.Event) -> bool:
    """Wait until ``/healthz`` answers 200; False when ``timeout`` passes or ``stop`` is set first."""
    deadline = time.monotonic() + timeout
    while not stop.is_set():
        try:
            if httpx.get(f"{url}/healthz", timeout=2.0).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        if time.monotonic() >= deadline:
            return False
        stop.wait(0.5)
    return False


async def room_ensure(args: argparse.Namespace) -> tuple[str, int]:
    """The live room showing the demo's session (opening a public one when needed), and the next episode."""
    async with SpectatorManager(args.url, args.token) as manager:
        if args.room:
            try:
                info = await manager.get_session_info(args.room)
                if info["training_session_id"] == args.session and info.get("room_status") in ("active", "paused"):
                    progress = info.get("progress") or {}
                    return info["room_code"], int(progress.get("episode") or 0) + 1
            except (RoomNotFound, RoomExpired):
                pass
        session = await manager.create_spectator_session(
            args.session,
            name=ROOM_NAME,
            algorithm=ALGORITHM,
            access_control=RoomAccessControl(AccessLevel.PUBLIC, max_spectators=SEATS),
        )
        return session.room_code, 1


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s demo: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    args = arguments(argv)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    if not server_wait(args.url, args.wait, stop):
        if stop.is_set():
            return 0
        logger.error("the server at %s is not healthy after %.0f s", args.url, args.wait)
        return 1
    room_code, first_episode = asyncio.run(room_ensure(args))
    logger.info("training %s with %s; watch it at %s/r/%s/", "CartPole", ALGORITHM, args.url, room_code)
    config = TrainerConfig(
        seed=args.seed,
        steps_per_second=args.steps_per_second,
        decision_hz=args.decision_hz,
        frame_hz=args.frame_hz,
        generation_steps=args.generation_steps,
        first_episode=first_episode,
    )
    spectator = SpectatorStream(args.session, args.url, args.token, name=ROOM_NAME, algorithm=ALGORITHM)
    spectator.set_status("running", f"{ROOM_NAME} is learning")
    try:
        result = train(config, spectator=spectator, max_episodes=args.episodes, stop=stop)
    finally:
        spectator.set_status("paused", "The demo trainer stopped.")
        # On Ctrl-C the server stops too: deliver what it still takes, but do not hang on it.
        spectator.close(timeout=SHUTDOWN_SECONDS)
    stats = spectator.stats()
    logger.info(
        "stopped after %d episodes (%d steps); sent %d metric points, %d decisions, %d frames",
        len(result.rewards),
        result.steps,
        stats["sent_metrics"],
        stats["sent_decisions"],
        stats["sent_frames"],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
