"""The per-process recorder: ingest hands it decisions, frames and metric points to record.

With ``SPECTATOR_RECORDING_WRITER=thread`` (the default) ``submit`` only queues (a bounded
queue, by bytes) and one writer thread per process drains it in batches: an ingest request
or socket never waits on disk or on the database for a recording, and a busy stream becomes
one file write and one counter update per episode per batch. Past the bound new records
are dropped and counted (``stats``); live spectators are not affected. With ``inline`` the
caller writes the records before it returns (``asubmit`` in a worker thread).
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import close_old_connections

from metrics.recording_services import recording_append

logger = logging.getLogger(__name__)

MAX_QUEUED_BYTES = 64 * 1024 * 1024
# Bytes a queued decision or point is counted as (their dicts are small and not measured).
ITEM_BYTES = 400
DROP_LOG_SECONDS = 60


@dataclass
class RecorderStats:
    submitted: int = 0
    recorded: int = 0
    skipped: int = 0
    dropped: int = 0
    failed: int = 0


class Recorder:
    def __init__(self, *, max_queued_bytes: int = MAX_QUEUED_BYTES):
        self.stats = RecorderStats()
        self._max_bytes = max_queued_bytes
        self._queue: deque = deque()
        self._queued_bytes = 0
        self._condition = threading.Condition()
        self._submitted = 0
        self._done = 0
        self._thread: threading.Thread | None = None
        self._last_drop_log = 0.0

    @staticmethod
    def inline() -> bool:
        return settings.SPECTATOR_RECORDING_WRITER == "inline"

    def submit(self, training_session_id: str, *, decisions=(), frames=(), points=()) -> None:
        """Record validated items of one session (see ``recording_append``); never raises."""
        count = len(decisions) + len(frames) + len(points)
        if not count:
            return
        if self.inline():
            self._write(training_session_id, decisions, frames, points)
            return
        size = ITEM_BYTES * (len(decisions) + len(points)) + sum(ITEM_BYTES + len(image) for _h, image in frames)
        with self._condition:
            self.stats.submitted += count
            if self._queued_bytes + size > self._max_bytes:
                self.stats.dropped += count
                self._drop_logged()
                return
            self._queue.append((training_session_id, decisions, frames, points, size))
            self._queued_bytes += size
            self._submitted += 1
            self._ensure_thread()
            self._condition.notify()

    async def asubmit(self, training_session_id: str, *, decisions=(), frames=(), points=()) -> None:
        """``submit`` from async code: inline writes happen in a worker thread, never on the event loop."""
        if self.inline():
            await database_sync_to_async(self.submit)(
                training_session_id, decisions=decisions, frames=frames, points=points
            )
        else:
            self.submit(training_session_id, decisions=decisions, frames=frames, points=points)

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything submitted so far is written; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._condition:
            target = self._submitted
            while self._done < target:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._condition.wait(left)
        return True

    def _drop_logged(self) -> None:
        now = time.monotonic()
        if now - self._last_drop_log >= DROP_LOG_SECONDS:
            self._last_drop_log = now
            logger.warning("recording queue full: %d record(s) dropped so far", self.stats.dropped)

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="spectator-recorder", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._queue:
                    self._condition.wait()
                items = list(self._queue)
                self._queue.clear()
                self._queued_bytes = 0
            # One batch per session: several small messages become one write per episode.
            merged: dict[str, tuple[list, list, list]] = {}
            for session_id, decisions, frames, points, _size in items:
                target = merged.setdefault(session_id, ([], [], []))
                target[0].extend(decisions)
                target[1].extend(frames)
                target[2].extend(points)
            try:
                close_old_connections()
                for session_id, (decisions, frames, points) in merged.items():
                    self._write(session_id, decisions, frames, points)
            finally:
                close_old_connections()
                with self._condition:
                    self._done += len(items)
                    self._condition.notify_all()

    def _write(self, training_session_id, decisions, frames, points) -> None:
        try:
            result = recording_append(
                training_session_id=training_session_id, decisions=decisions, frames=frames, points=points
            )
        except Exception:
            self.stats.failed += len(decisions) + len(frames) + len(points)
            logger.exception("could not record for %s", training_session_id)
            return
        self.stats.recorded += result.recorded
        self.stats.skipped += result.skipped


recorder = Recorder()
atexit.register(recorder.flush, 5.0)
