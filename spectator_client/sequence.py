"""Names this sender's metric points so a retried batch is stored once: a stream id and a seq."""

from __future__ import annotations

import itertools
import secrets
import threading
from typing import Any

from spectator_client.models import MetricsData, metrics_point


def stream_id_new(prefix: str = "py") -> str:
    """A random stream id (letters, digits, ``-``), different for every client instance."""
    return f"{prefix}-{secrets.token_hex(8)}"


class PointSequence:
    """Numbers one sender's points ``0, 1, 2…`` under its own random ``stream`` id; thread-safe."""

    def __init__(self, stream: str | None = None):
        self.stream = stream or stream_id_new()
        self._counter = itertools.count()
        self._lock = threading.Lock()

    def next_seq(self) -> int:
        with self._lock:
            return next(self._counter)

    def point(self, metrics: MetricsData | dict[str, Any]) -> dict[str, Any]:
        """The wire form of ``metrics`` with this sender's stream and the next seq."""
        point = metrics_point(metrics, stream=self.stream, seq=0)
        point["seq"] = self.next_seq()
        return point
