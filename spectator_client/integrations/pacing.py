"""A rate limit for what a training loop streams (frames, decisions): at most so many a second."""

from __future__ import annotations

import time
from collections.abc import Callable


class RateLimit:
    """Let at most ``hz`` events a second through; ``hz`` of 0 or None lets none through, ``inf`` every one."""

    def __init__(self, hz: float | None, *, clock: Callable[[], float] = time.monotonic):
        self.hz = hz or 0.0
        self.clock = clock
        self._next: float | None = None

    def ready(self) -> bool:
        """Whether an event may go now (and count it when it may)."""
        if self.hz <= 0:
            return False
        now = self.clock()
        if self._next is not None and now < self._next:
            return False
        period = 1.0 / self.hz
        # Keep the average rate when called a little late, without a burst after a long pause.
        self._next = now + period if self._next is None or now - self._next > period else self._next + period
        return True
