"""Garbage-collector settings for a server process holding many sockets.

Measured with 1,000 spectators in one room (benchmarks/fanout.py): CPython's full collections
walked every object of the process, Django's ~115,000 import-time objects plus ~160 per
connection, and paused the event loop 60-145 ms a few times a minute, which set the p99 latency
(100-260 ms at 20-30 metric points/s). Freezing what exists after start-up takes Django's objects
out of every collection, and a larger first-generation threshold lets short-lived objects (one
ASGI message per delivery) die before a collection promotes them, so full collections become
rare. With both, p99 fell to 44-62 ms at the same rates.
"""

import gc

GEN0_THRESHOLD = 50_000


def tune_gc() -> None:
    """Freeze the objects that exist now (imports, settings, URL conf) and collect less often."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, max(gen1, 20), max(gen2, 100))
