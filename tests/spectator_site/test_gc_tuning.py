"""A server process freezes its start-up objects and collects less often (spectator_site.gc_tuning)."""

from tests.support.servers import python_json, server_env

PROBE = """
import gc, json
before = gc.get_freeze_count()
import spectator_site.asgi
print(json.dumps({"before": before, "frozen": gc.get_freeze_count(), "threshold": gc.get_threshold()}))
"""


def test_loading_the_asgi_application_freezes_start_up_objects_and_raises_the_threshold(tmp_path):
    probe = python_json(PROBE, server_env(tmp_path), timeout=120)
    assert probe["before"] == 0
    # Django, DRF and Channels loaded: tens of thousands of objects no collection walks again.
    assert probe["frozen"] > 20_000
    assert probe["threshold"][0] >= 50_000


CYCLE_PROBE = """
import gc, json, threading, weakref
import spectator_site.asgi
gc.disable()  # only the periodic full collection may find the cycle now


class Node:
    pass


node = Node()
node.self = node
collected = threading.Event()
weakref.finalize(node, collected.set)
del node
print(json.dumps({
    "collected": collected.wait(30),
    "threads": [thread.name for thread in threading.enumerate()],
}))
"""


def test_cyclic_garbage_is_collected_by_the_periodic_full_collection(tmp_path):
    probe = python_json(CYCLE_PROBE, server_env(tmp_path, SPECTATOR_GC_FULL_INTERVAL="0.05"), timeout=120)
    assert probe["collected"] is True
    assert "spectator-gc" in probe["threads"]


def test_no_periodic_collection_when_switched_off(tmp_path):
    env = server_env(tmp_path, SPECTATOR_GC_FULL_INTERVAL="0")
    probe = python_json(CYCLE_PROBE.replace("collected.wait(30)", "collected.wait(0.5)"), env, timeout=120)
    assert probe["collected"] is False
    assert "spectator-gc" not in probe["threads"]
