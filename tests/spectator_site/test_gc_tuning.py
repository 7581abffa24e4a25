"""A server process freezes its start-up objects and collects less often (spectator_site.gc_tuning)."""

import json
import subprocess
import sys

from tests.support.servers import ROOT, server_env

PROBE = """
import gc, json
before = gc.get_freeze_count()
import spectator_site.asgi
print(json.dumps({"before": before, "frozen": gc.get_freeze_count(), "threshold": gc.get_threshold()}))
"""


def test_loading_the_asgi_application_freezes_start_up_objects_and_raises_the_threshold(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=server_env(tmp_path), capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    probe = json.loads(result.stdout.splitlines()[-1])
    assert probe["before"] == 0
    # Django, DRF and Channels loaded: tens of thousands of objects no collection walks again.
    assert probe["frozen"] > 20_000
    assert probe["threshold"][0] >= 50_000
