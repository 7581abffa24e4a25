"""python -m spectator_demo against a real server: its stream reaches the public room, like any client's."""

import json
import signal
import subprocess
import sys

import httpx

from spectator_demo import ALGORITHM, ROOM_NAME
from tests.support.room_watch import RoomWatch
from tests.support.servers import ROOT, manage, server_env


def demo_start(server, config, *args):
    log = open(config.with_suffix(".log"), "wb")  # noqa: SIM115 - closed with the process
    command = [sys.executable, "-m", "spectator_demo", "--url", server.url, "--config", str(config), *args]
    return subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT), log


def test_the_demo_streams_metrics_decisions_and_frames_into_its_public_room(spectator_server, tmp_path):
    config = tmp_path / "demo.json"
    manage(server_env(spectator_server.data_dir), "demo_setup", "--output", str(config), "--url", spectator_server.url)
    room_code = json.loads(config.read_text())["room_code"]
    public = httpx.get(f"{spectator_server.url}/api/v1/rooms/public/", timeout=10).json()["results"]
    assert ROOM_NAME in [room["name"] for room in public if room["room_code"] == room_code]

    with RoomWatch(spectator_server.url, room_code) as watch:
        process, log = demo_start(spectator_server, config, "--seed", "1", "--steps-per-second", "300")
        try:
            watch.wait_for_types("training_metrics", "bot_decision", "frame", timeout=60)
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0, config.with_suffix(".log").read_text()
        finally:
            if process.poll() is None:
                process.kill()
            log.close()
        # Stopping tells the room, like any trainer's status would.
        watch.wait_for(
            lambda messages: any(m.get("type") == "training_status" and m.get("status") == "paused" for m in messages),
            timeout=20,
            what="the paused status",
        )

    point = watch.of_type("training_metrics")[0]["data"]
    point = point[0] if isinstance(point, list) else point
    assert point["algorithm"] == ALGORITHM and point["episode"] >= 1 and point["episode_length"] >= 1
    for field in (
        "average_reward",
        "best_reward",
        "win_rate",
        "loss_value",
        "learning_rate",
        "epsilon",
        "frames_per_second",
    ):
        assert point[field] is not None, field
    decision = watch.of_type("bot_decision")[0]
    assert set(decision["action_probabilities"]) == {"left", "right"}
    assert abs(sum(decision["action_probabilities"].values()) - 1) < 1e-6
    assert decision["selected_action"] in ("left", "right") and set(decision["q_values"]) == {"left", "right"}
    frame = watch.of_type("frame")[0]
    assert frame["mime"] == "image/png" and frame["image"].startswith(b"\x89PNG\r\n\x1a\n")


def test_a_restarted_demo_goes_on_in_the_same_room_from_the_next_episode(spectator_server, tmp_path):
    config = tmp_path / "demo.json"
    manage(server_env(spectator_server.data_dir), "demo_setup", "--output", str(config))
    saved = json.loads(config.read_text())
    headers = {"Authorization": f"Bearer {saved['token']}"}
    with httpx.Client(base_url=f"{spectator_server.url}/api/v1/", headers=headers, timeout=10) as api:

        def episodes():
            rows = api.get(f"sessions/{saved['training_session_id']}/metrics/", params={"limit": 5000}).json()
            return [row["data"]["episode"] for row in rows]

        before = episodes()
        for _run in range(2):
            process, log = demo_start(spectator_server, config, "--steps-per-second", "0", "--episodes", "5")
            with log:
                assert process.wait(timeout=60) == 0, config.with_suffix(".log").read_text()
        start = before[-1] + 1 if before else 1
        assert episodes() == [*before, *range(start, start + 10)]
        assert api.get(f"rooms/{saved['room_code']}/").json()["room_status"] == "active"
