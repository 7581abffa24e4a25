"""The in-process periodic sweep: expire rooms and auto-approve timed-out join requests.

Every server process runs one; the sweeps are idempotent (each row changes state once), so
several processes sweeping together do no double work.
"""

import logging
import threading

from django.conf import settings
from django.db import close_old_connections

from rooms.services import join_requests_auto_approve, rooms_expire, spectators_expire_stale

logger = logging.getLogger(__name__)
_started = threading.Event()
_stop = threading.Event()


def sweep_once() -> dict:
    """Run every sweep once and return what each changed."""
    return {
        "rooms_expired": rooms_expire(),
        "requests_auto_approved": join_requests_auto_approve(),
        "spectators_timed_out": spectators_expire_stale(),
    }


def _loop(interval: float) -> None:
    while not _stop.wait(interval):
        try:
            # Only the long-lived thread recycles its connection: a caller of sweep_once (the
            # command, a test) may be inside a transaction that closing would break.
            close_old_connections()
            result = sweep_once()
            if any(result.values()):
                logger.info("sweep: %s", result)
        except Exception:
            logger.exception("sweep failed; retrying next interval")
        finally:
            close_old_connections()


def sweeper_start() -> bool:
    """Start the sweep thread once per process, unless ``SPECTATOR_SWEEP_INTERVAL`` is 0."""
    interval = settings.SPECTATOR_SWEEP_INTERVAL
    if interval <= 0 or _started.is_set():
        return False
    _started.set()
    threading.Thread(target=_loop, args=(interval,), name="spectator-sweeper", daemon=True).start()
    return True
