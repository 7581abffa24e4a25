"""SpectatorStream: a synchronous, non-blocking sender for plain training loops.

``log_metrics``, ``log_decision`` and ``log_frame`` only append to bounded in-memory buffers
and return; one background thread batches what is buffered and POSTs it, retrying with
exponential backoff and jitter while the server is unreachable. Metric points carry this
sender's ``stream`` id and increasing ``seq``, so a batch that is retried after a lost
response is not stored twice. When a buffer is full the oldest decisions and frames go
first; metric points are dropped only when their own (larger) buffer overflows. Every drop
is counted in ``stats()``.
"""

from __future__ import annotations

import atexit
import collections
import logging
import random
import re
import threading
import time
import weakref
from typing import Any

import httpx

from spectator_client.errors import (
    AuthenticationRequired,
    RateLimited,
    ServerUnavailable,
    SpectatorError,
    TrainingSessionNotFound,
    ValidationError,
)
from spectator_client.frames import frame_pack
from spectator_client.models import MetricsData, decision_payload
from spectator_client.rooms import session_path
from spectator_client.sequence import PointSequence
from spectator_client.transport import ApiConfig, SyncApi

logger = logging.getLogger("spectator_client")

MAX_BATCH = 1000
FIELD_INDEX = re.compile(r"^(points|decisions)\.(\d+)(\.|$)")
COUNTERS = (
    "logged_metrics",
    "logged_decisions",
    "logged_frames",
    "sent_metrics",
    "sent_decisions",
    "sent_frames",
    "sent_statuses",
    "duplicates",
    "requests",
    "retried",
    "dropped_metrics",
    "dropped_decisions",
    "dropped_frames",
    "dropped_statuses",
    "rejected_metrics",
    "rejected_decisions",
    "rejected_frames",
)

_open_streams: weakref.WeakSet[SpectatorStream] = weakref.WeakSet()


@atexit.register
def _close_open_streams() -> None:
    for stream in list(_open_streams):
        stream.close(timeout=stream.exit_timeout)


class SpectatorStream:
    """Stream a training session's metrics, decisions and frames without ever blocking the training step.

    Usable as a context manager; ``close()`` (also run at interpreter exit) flushes what it
    can within its timeout. ``server_url`` defaults to ``$SPECTATOR_URL``, ``api_token`` to
    ``$SPECTATOR_TOKEN``. The training session is created on first contact when missing.
    """

    def __init__(
        self,
        training_session_id: str,
        server_url: str | None = None,
        api_token: str | None = None,
        *,
        game_server_url: str | None = None,
        name: str | None = None,
        algorithm: str | None = None,
        total_episodes: int | None = None,
        create_session: bool = True,
        max_metric_points: int = 100_000,
        max_pending: int = 1_000,
        max_pending_bytes: int = 32 * 1024 * 1024,
        max_frame_bytes: int = 2 * 1024 * 1024,
        batch_size: int = 500,
        flush_interval: float = 0.25,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        timeout: float = 10.0,
        exit_timeout: float = 5.0,
        stream: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ):
        self.training_session_id = training_session_id
        self.config = ApiConfig.build(server_url, api_token, game_server_url=game_server_url, timeout=timeout)
        self.sequence = PointSequence(stream)
        self.max_metric_points = max_metric_points
        self.max_pending = max_pending
        self.max_pending_bytes = max_pending_bytes
        self.max_frame_bytes = max_frame_bytes
        self.batch_size = max(1, min(batch_size, MAX_BATCH))
        self.flush_interval = flush_interval
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.exit_timeout = exit_timeout
        self._session_fields = {
            key: value
            for key, value in {"name": name, "algorithm": algorithm, "total_episodes": total_episodes}.items()
            if value is not None
        }
        self._session_ready = not create_session
        self._transport = transport

        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._abort = threading.Event()
        self._metrics: collections.deque[dict[str, Any]] = collections.deque()
        # Decisions and frames are numbered on arrival so the oldest of either is dropped first.
        self._decisions: collections.deque[tuple[int, dict[str, Any]]] = collections.deque()
        self._frames: collections.deque[tuple[int, bytes]] = collections.deque()
        # Each status waits for what was logged before it: (last point's seq, last arrival, payload).
        self._statuses: collections.deque[tuple[int, int, dict[str, Any]]] = collections.deque(maxlen=100)
        self._frame_bytes = 0
        self._arrivals = 0
        self._inflight: tuple[str, Any] | None = None
        self._counts = dict.fromkeys(COUNTERS, 0)
        self._last_error: str | None = None
        self._fatal: SpectatorError | None = None
        self._connected = False
        self._closed = False
        self._flushing = 0
        self._warned: set[str] = set()

        self._thread = threading.Thread(target=self._run, name=f"spectator-stream-{training_session_id}", daemon=True)
        self._thread.start()
        _open_streams.add(self)

    @property
    def stream(self) -> str:
        return self.sequence.stream

    def __enter__(self) -> SpectatorStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- The training loop's side: never waits on the network ---------------------------------

    def log_metrics(self, metrics: MetricsData | dict[str, Any] | None = None, **fields: Any) -> None:
        """Queue one metric point (a MetricsData, a dict, or keyword fields); returns at once.

        Raises ``TypeError`` for a value that is not metrics at all.
        """
        if metrics is None:
            metrics = fields
        elif fields:
            raise TypeError("Pass metrics or keyword fields, not both.")
        point = self.sequence.point(metrics)
        with self._lock:
            self._counts["logged_metrics"] += 1
            if self._refuse_when_closed("metrics"):
                return
            # The bound covers points in flight too, so what is held never exceeds it.
            if self._metrics and len(self._metrics) + self._inflight_counts()["metrics"] >= self.max_metric_points:
                self._metrics.popleft()
                self._counts["dropped_metrics"] += 1
            self._metrics.append(point)
            wake = len(self._metrics) >= self.batch_size
        if wake:
            self._wake.set()

    def log_decision(
        self,
        action_probabilities: Any = None,
        state_values: Any = None,
        q_values: Any = None,
        selected_action: Any = None,
        *,
        episode: int | None = None,
        step: int | None = None,
    ) -> None:
        """Queue one bot decision for the room's decision view; returns at once."""
        decision = decision_payload(
            action_probabilities, state_values, q_values, selected_action, episode=episode, step=step
        )
        with self._lock:
            self._counts["logged_decisions"] += 1
            if self._refuse_when_closed("decisions"):
                return
            self._arrivals += 1
            self._decisions.append((self._arrivals, decision))
            self._evict()

    def log_frame(
        self, image: bytes, mime: str | None = None, episode: int | None = None, step: int | None = None
    ) -> None:
        """Queue one game frame (PNG, JPEG or WebP bytes); returns at once.

        Raises ``ValueError`` for an empty image or an unknown image type.
        """
        message = frame_pack(image, mime, episode=episode, step=step)
        with self._lock:
            self._counts["logged_frames"] += 1
            if len(image) > self.max_frame_bytes:
                self._counts["rejected_frames"] += 1
                self._warn_once(
                    "frame-size",
                    "frame of %d bytes is over the %d-byte limit; dropped",
                    len(image),
                    self.max_frame_bytes,
                )
                return
            if self._refuse_when_closed("frames"):
                return
            self._arrivals += 1
            self._frames.append((self._arrivals, message))
            self._frame_bytes += len(message)
            self._evict()

    def set_status(self, status: str, message: str = "") -> None:
        """Queue a trainer status change (``running``, ``paused``, ``completed``); returns at once."""
        with self._lock:
            if self._refuse_when_closed("statuses"):
                return
            if len(self._statuses) == self._statuses.maxlen:
                self._counts["dropped_statuses"] += 1
            last_seq = self._metrics[-1]["seq"] if self._metrics else -1
            self._statuses.append((last_seq, self._arrivals, {"status": status, "message": message}))
        self._wake.set()

    def _refuse_when_closed(self, kind: str) -> bool:
        if not self._closed and self._fatal is None:
            return False
        self._counts[f"dropped_{kind}"] += 1
        self._warn_once(
            "closed", "SpectatorStream is %s; dropping what is logged", "closed" if self._closed else "stopped"
        )
        return True

    def _evict(self) -> None:
        """Drop the oldest decisions and frames while over the count or byte limit (lock held)."""
        while self._decisions or self._frames:
            over_count = len(self._decisions) + len(self._frames) > self.max_pending
            if not over_count and self._frame_bytes <= self.max_pending_bytes:
                return
            oldest_decision = self._decisions[0][0] if self._decisions else None
            oldest_frame = self._frames[0][0] if self._frames else None
            if oldest_frame is None or (oldest_decision is not None and oldest_decision < oldest_frame and over_count):
                self._decisions.popleft()
                self._counts["dropped_decisions"] += 1
            else:
                _arrival, frame = self._frames.popleft()
                self._frame_bytes -= len(frame)
                self._counts["dropped_frames"] += 1

    # --- Reading the state --------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counters: logged, sent, duplicates, retried, dropped_* and rejected_* by kind, what is pending."""
        with self._lock:
            stats: dict[str, Any] = dict(self._counts)
            inflight = self._inflight_counts()
            stats["pending_metrics"] = len(self._metrics) + inflight["metrics"]
            stats["pending_decisions"] = len(self._decisions) + inflight["decisions"]
            stats["pending_frames"] = len(self._frames) + inflight["frames"]
            stats["pending_statuses"] = len(self._statuses) + inflight["statuses"]
            stats["sent"] = stats["sent_metrics"] + stats["sent_decisions"] + stats["sent_frames"]
            stats["dropped"] = sum(stats[f"dropped_{kind}"] for kind in ("metrics", "decisions", "frames", "statuses"))
            stats["connected"] = self._connected
            stats["last_error"] = self._last_error
            stats["stream"] = self.stream
            stats["error"] = str(self._fatal) if self._fatal else None
            return stats

    def _inflight_counts(self) -> dict[str, int]:
        counts = {"metrics": 0, "decisions": 0, "frames": 0, "statuses": 0}
        if self._inflight is not None:
            kind, payload = self._inflight
            if kind == "ingest":
                counts["metrics"] = len(payload["points"])
                counts["decisions"] = len(payload["decisions"])
            elif kind == "frame":
                counts["frames"] = 1
            else:
                counts["statuses"] = 1
        return counts

    def _pending(self) -> bool:
        return bool(self._metrics or self._decisions or self._frames or self._statuses or self._inflight)

    # --- Flushing and closing -------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything logged so far was sent (True), or ``timeout`` seconds passed (False).

        Returns False at once when the stream stopped on an error that retrying cannot fix.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            self._flushing += 1
            try:
                self._wake.set()
                while self._pending() and self._fatal is None and self._thread.is_alive():
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return False
                    self._changed.wait(remaining)
                return not self._pending()
            finally:
                self._flushing -= 1

    def close(self, timeout: float | None = 10.0) -> bool:
        """Flush for up to ``timeout`` seconds, then stop the sender. Returns whether everything was sent.

        Later ``log_*`` calls are counted as dropped. Closing twice is fine.
        """
        if self._closed:
            return not self._pending()
        drained = self.flush(timeout)
        with self._lock:
            self._closed = True
        self._abort.set()
        self._wake.set()
        self._thread.join(timeout=max(1.0, self.config.timeout))
        _open_streams.discard(self)
        if not drained:
            self._drop_leftovers()
        return drained

    def _drop_leftovers(self) -> None:
        """Count what could not be sent before closing as dropped."""
        with self._lock:
            if self._thread.is_alive():
                return
            inflight = self._inflight_counts()
            self._counts["dropped_metrics"] += len(self._metrics) + inflight["metrics"]
            self._counts["dropped_decisions"] += len(self._decisions) + inflight["decisions"]
            self._counts["dropped_frames"] += len(self._frames) + inflight["frames"]
            self._counts["dropped_statuses"] += len(self._statuses) + inflight["statuses"]
            self._metrics.clear()
            self._decisions.clear()
            self._frames.clear()
            self._statuses.clear()
            self._frame_bytes = 0
            self._inflight = None

    # --- The sender thread ------------------------------------------------------------------------

    def _run(self) -> None:
        api = SyncApi(self.config, transport=self._transport)
        failures = 0
        try:
            while not self._abort.is_set():
                with self._lock:
                    if self._inflight is None:
                        self._inflight = self._next_batch()
                    batch = self._inflight
                    if batch is None:
                        self._changed.notify_all()
                if batch is None:
                    self._wake.wait(self.flush_interval)
                    self._wake.clear()
                    continue
                try:
                    if not self._session_ready:
                        self._session_ensure(api)
                    self._send(api, batch)
                except (ServerUnavailable, RateLimited) as exc:
                    failures += 1
                    with self._lock:
                        self._counts["retried"] += 1
                        self._connected = False
                        self._last_error = str(exc)
                    delay = min(self.backoff_max, self.backoff_initial * 2 ** min(failures - 1, 30))
                    delay = max(delay * random.uniform(0.5, 1.0), getattr(exc, "retry_after", None) or 0)
                    self._abort.wait(delay)
                    continue
                except ValidationError as exc:
                    if not self._reject_invalid(batch, exc):
                        self._stop_on(exc)
                        return
                    continue
                except SpectatorError as exc:
                    self._stop_on(exc)
                    return
                failures = 0
                if not self._flushing and self._batch_was_small(batch):
                    # Let the next batch fill up instead of sending one point per request.
                    self._wake.wait(self.flush_interval)
                    self._wake.clear()
        except Exception as exc:  # noqa: BLE001 - the sender must report, not vanish
            logger.exception("SpectatorStream sender failed")
            self._stop_on(SpectatorError(f"Sender failed: {exc}", code="internal"))
        finally:
            api.close()
            with self._lock:
                self._changed.notify_all()

    def _next_batch(self) -> tuple[str, Any] | None:
        """Take the next request's worth from the buffers (lock held)."""
        if self._statuses and self._status_due(*self._statuses[0][:2]):
            return ("status", self._statuses.popleft()[2])
        if self._metrics or self._decisions:
            points = [self._metrics.popleft() for _ in range(min(self.batch_size, len(self._metrics)))]
            decisions = [self._decisions.popleft()[1] for _ in range(min(MAX_BATCH, len(self._decisions)))]
            return ("ingest", {"points": points, "decisions": decisions})
        if self._frames:
            _arrival, frame = self._frames.popleft()
            self._frame_bytes -= len(frame)
            return ("frame", frame)
        return None

    def _status_due(self, last_seq: int, last_arrival: int) -> bool:
        """Whether everything logged before a status has gone (a "completed" must not overtake the last points)."""
        return not (
            (self._metrics and self._metrics[0]["seq"] <= last_seq)
            or (self._decisions and self._decisions[0][0] <= last_arrival)
            or (self._frames and self._frames[0][0] <= last_arrival)
        )

    def _batch_was_small(self, batch: tuple[str, Any]) -> bool:
        kind, payload = batch
        return kind == "ingest" and len(payload["points"]) < self.batch_size and not self._frames

    def _session_ensure(self, api: SyncApi) -> None:
        body = {"id": self.training_session_id, **self._session_fields}
        try:
            api.post("sessions/", body)
        except ValidationError as exc:
            if exc.field != "id":
                raise
            try:
                # Staff may stream into a session another user owns.
                api.request("GET", session_path(self.training_session_id))
            except TrainingSessionNotFound:
                raise exc from None
        self._session_ready = True

    def _send(self, api: SyncApi, batch: tuple[str, Any]) -> None:
        kind, payload = batch
        path = session_path(self.training_session_id, {"ingest": "ingest", "frame": "frames", "status": "status"}[kind])
        if kind == "frame":
            result = api.request("POST", path, content=payload, headers={"Content-Type": "application/octet-stream"})
        else:
            result = api.post(path, payload)
        with self._lock:
            self._counts["requests"] += 1
            self._connected = True
            self._last_error = None
            if kind == "ingest":
                self._counts["sent_metrics"] += result.get("accepted", 0) + result.get("duplicates", 0)
                self._counts["duplicates"] += result.get("duplicates", 0)
                self._counts["sent_decisions"] += result.get("decisions", len(payload["decisions"]))
            elif kind == "frame":
                self._counts["sent_frames"] += 1
            else:
                self._counts["sent_statuses"] += 1
            self._inflight = None
            self._changed.notify_all()

    def _reject_invalid(self, batch: tuple[str, Any], exc: ValidationError) -> bool:
        """Drop the one item the server refused and keep the rest in flight; False if none can be named."""
        kind, payload = batch
        match = FIELD_INDEX.match(exc.field or "")
        with self._lock:
            if kind == "frame" and (exc.field or "").startswith("frame"):
                self._counts["rejected_frames"] += 1
                self._inflight = None
            elif kind == "ingest" and match and int(match.group(2)) < len(payload[match.group(1)]):
                del payload[match.group(1)][int(match.group(2))]
                self._counts["rejected_metrics" if match.group(1) == "points" else "rejected_decisions"] += 1
                if not payload["points"] and not payload["decisions"]:
                    self._inflight = None
            elif kind == "status" and exc.field == "status":
                self._inflight = None
            else:
                return False
            self._changed.notify_all()
        self._warn_once(
            f"rejected-{kind}", "server refused a %s: %s (dropped; further refusals are counted only)", kind, exc
        )
        return True

    def _stop_on(self, exc: SpectatorError) -> None:
        if isinstance(exc, (AuthenticationRequired, TrainingSessionNotFound)):
            hint = " (check the API token and the training session id)"
        else:
            hint = ""
        logger.error("SpectatorStream for %s stopped: %s%s", self.training_session_id, exc, hint)
        with self._lock:
            self._fatal = exc
            self._last_error = str(exc)
            self._changed.notify_all()

    def _warn_once(self, key: str, message: str, *args: Any) -> None:
        if key not in self._warned:
            self._warned.add(key)
            logger.warning(message, *args)


SyncSpectator = SpectatorStream
