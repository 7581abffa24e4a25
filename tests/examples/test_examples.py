"""Every script in examples/ runs against a live server and exits 0 (each in a bounded time)."""

import importlib.util
import os
import subprocess
import sys

import pytest

from tests.support.servers import ROOT

EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
# Shorter runs where a script takes a length; the defaults are for people watching.
ARGUMENTS = {"sb3_callback.py": ["--timesteps", "512"], "gymnasium_wrapper.py": ["--episodes", "5"]}
NEEDS = {"sb3_callback.py": "stable_baselines3"}


def test_every_seed_scenario_has_an_example():
    names = {path.stem for path in EXAMPLES}
    assert {
        "basic_session",
        "password_protected_room",
        "private_room",
        "approval_workflow",
        "metrics_overlay",
        "training_engine_integration",
    } <= names


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda path: path.stem)
def test_the_example_runs_against_a_live_server(script, spectator_server):
    needed = NEEDS.get(script.name)
    if needed and not importlib.util.find_spec(needed) and os.environ.get("SPECTATOR_REQUIRE_SB3") != "1":
        pytest.skip(f"{script.name} needs {needed} (.ci/run installs it)")
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SPECTATOR_URL": spectator_server.url,
        "SPECTATOR_TOKEN": spectator_server.tokens["alice"],
        "SPECTATOR_GUEST_USER": "bob",
        "SPECTATOR_GUEST_TOKEN": spectator_server.tokens["bob"],
    }
    result = subprocess.run(
        [sys.executable, str(script), *ARGUMENTS.get(script.name, [])],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 0, f"{script.name} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
