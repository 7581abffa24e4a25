"""The in-process periodic sweep: expire rooms, auto-approve timed-out join requests, free
stale seats and apply the recordings' retention (``manage.py prune_recordings`` alone).

Every server process runs one; each round, the first process to claim it in the shared cache
sweeps and the others skip it. The sweeps are idempotent as well (each row changes state
once), so two processes sweeping together would still change nothing twice.
"""

import logging
import os
import threading

from django.conf import settings
from django.core.cache import cache
from django.db import close_old_connections

from metrics.recording_services import recordings_prune
from rooms.services import join_requests_auto_approve, rooms_expire, spectators_expire_stale
from spectator_site.faults import cache_errors

logger = logging.getLogger(__name__)
_started = threading.Event()
_stop = threading.Event()


def sweep_once() -> dict:
    """Run every sweep once and return what each changed."""
    return {
        "rooms_expired": rooms_expire(),
        "requests_auto_approved": join_requests_auto_approve(),
        "spectators_timed_out": spectators_expire_stale(),
        "recordings_pruned": sum(recordings_prune().values()),
    }


def _loop(interval: float) -> None:
    while not _stop.wait(interval):
        try:
            # Only the long-lived thread recycles its connection: a caller of sweep_once (the
            # command, a test) may be inside a transaction that closing would break.
            close_old_connections()
            if not _turn_to_sweep(interval):
                continue
            result = sweep_once()
            if any(result.values()):
                logger.info("sweep: %s", result)
        except Exception:
            logger.exception("sweep failed; retrying next interval")
        finally:
            close_old_connections()


SWEEP_TURN_KEY = "spectator:sweep-turn"


def _turn_to_sweep(interval: float) -> bool:
    """One process a round sweeps: the first to claim the round in the shared cache.

    The sweeps are idempotent anyway; claiming the round keeps N processes (Redis shared)
    from each running the same queries every interval. Without the cache, sweep anyway.
    """
    try:
        return cache.add(SWEEP_TURN_KEY, os.getpid(), timeout=max(1, int(interval * 0.8)))
    except cache_errors():
        return True


def sweeper_start() -> bool:
    """Start the sweep thread once per process, unless ``SPECTATOR_SWEEP_INTERVAL`` is 0."""
    interval = settings.SPECTATOR_SWEEP_INTERVAL
    if interval <= 0 or _started.is_set():
        return False
    _started.set()
    threading.Thread(target=_loop, args=(interval,), name="spectator-sweeper", daemon=True).start()
    return True
