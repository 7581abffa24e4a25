"""Password brute-force lockout, shared by every process through the cache.

Each wrong room password counts against (room, client). Past the limit inside the window,
that client is locked out of the room's password check until the window ends, right
password or not.
"""

import hashlib
import time

from django.conf import settings
from django.core.cache import cache


class LockedOut(Exception):
    def __init__(self, retry_after: int):
        self.retry_after = max(1, int(retry_after))
        super().__init__(f"Too many wrong passwords. Try again in {self.retry_after} seconds.")


def _key(room_id, client: str) -> str:
    digest = hashlib.sha256(f"{room_id}|{client}".encode()).hexdigest()[:32]
    return f"spectator:pwfail:{digest}"


def lockout_check(*, room_id, client: str) -> None:
    """Raise ``LockedOut`` while ``client`` is locked out of ``room_id``."""
    state = cache.get(_key(room_id, client))
    if state and state["count"] >= settings.SPECTATOR_PASSWORD_MAX_ATTEMPTS:
        remaining = state["until"] - time.time()
        if remaining > 0:
            raise LockedOut(remaining)


def lockout_record_failure(*, room_id, client: str) -> None:
    """Count a wrong password; the window starts at the first failure."""
    window = settings.SPECTATOR_PASSWORD_LOCKOUT_SECONDS
    key = _key(room_id, client)
    state = cache.get(key) or {"count": 0, "until": time.time() + window}
    state["count"] += 1
    if state["count"] >= settings.SPECTATOR_PASSWORD_MAX_ATTEMPTS:
        state["until"] = time.time() + window
    cache.set(key, state, timeout=window)


def lockout_clear(*, room_id, client: str) -> None:
    cache.delete(_key(room_id, client))
