"""Garbage-collector settings for a server process holding many sockets.

Measured with 1,000 spectators in one room (benchmarks/fanout.py): CPython's full collections
walked every object of the process, Django's ~115,000 import-time objects plus ~160 per
connection, and paused the event loop 60-145 ms a few times a minute, which set the p99 latency
(100-260 ms at 20-30 metric points/s). Freezing what exists after start-up takes Django's objects
out of every collection, and a larger first-generation threshold lets short-lived objects (one
ASGI message per delivery) die before a collection promotes them, so full collections become
rare. With both, p99 fell to 44-62 ms at the same rates.

Rare full collections let cyclic garbage pile up, though: Django leaves a few cycles behind
each request (its per-request database wrapper, the cancelled disconnect listener and its
traceback). In the 30-minute soak (benchmarks/soak.py) the interpreter's allocated blocks rose by
~22,000 a minute for 15 minutes until a full collection came, and RSS followed. So a full
collection also runs every ``SPECTATOR_GC_FULL_INTERVAL`` seconds (default 300; a pause of
~0.1 s at that load), which keeps memory flat at the cost of one short pause per interval.
"""

import gc
import logging
import threading
import time

logger = logging.getLogger(__name__)

GEN0_THRESHOLD = 50_000

_collector: threading.Thread | None = None


def tune_gc(full_interval: float = 0.0) -> None:
    """Freeze the objects that exist now (imports, settings, URL conf), collect less often, and
    with ``full_interval`` > 0 run a full collection that often."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, max(gen1, 20), max(gen2, 100))
    if full_interval > 0:
        periodic_full_collection_start(full_interval)


def periodic_full_collection_start(interval: float) -> None:
    global _collector
    if _collector is not None and _collector.is_alive():
        return
    _collector = threading.Thread(target=_collect_every, args=(interval,), name="spectator-gc", daemon=True)
    _collector.start()


def _collect_every(interval: float) -> None:
    while True:
        time.sleep(interval)
        started = time.perf_counter()
        found = gc.collect()
        logger.debug("full collection: %d unreachable objects in %.0f ms", found, (time.perf_counter() - started) * 1e3)
