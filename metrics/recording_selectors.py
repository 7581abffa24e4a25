"""Reads of recorded episodes: a session's recording policy, its episodes, an episode's
timeline (for replay) and its JSON export."""

from __future__ import annotations

import base64
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field

import orjson
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.db.models import QuerySet

from metrics import recordings
from metrics.events import decision_floats, metrics_data
from metrics.models import MetricPoint, RecordedEpisode, RecordingPolicy
from metrics.selectors import POINT_FIELDS

Mode = RecordingPolicy.Mode
POLICY_CACHE_SECONDS = 5
# Replay pacing when a recording carries no timestamps, and the longest pause it keeps.
DEFAULT_STEPS_PER_SECOND = 20.0
MAX_GAP_SECONDS = 1.0
EXPORT_CHUNK_BYTES = 256 * 1024


@dataclass(frozen=True)
class Policy:
    """A session's recording settings, resolved (the server's defaults where it set none)."""

    mode: str
    every_n: int
    keep: int
    max_bytes: int
    max_age_hours: float

    def samples(self, episode: int) -> bool:
        """Whether records of ``episode`` are stored (best_worst keeps every one until its reward is known)."""
        if self.mode == Mode.OFF:
            return False
        if self.mode == Mode.EVERY_NTH:
            return episode % self.every_n == 0
        return True

    def to_dict(self) -> dict:
        return {
            "mode": self.mode,
            "every_n": self.every_n,
            "keep": self.keep,
            "max_bytes": self.max_bytes,
            "max_age_hours": self.max_age_hours,
        }


def policy_default() -> Policy:
    mode = settings.SPECTATOR_RECORDING_MODE
    if mode not in Mode.values:
        raise ImproperlyConfigured(f"SPECTATOR_RECORDING_MODE must be one of {', '.join(Mode.values)}.")
    return Policy(
        mode=mode,
        every_n=RecordingPolicy._meta.get_field("every_n").default,
        keep=RecordingPolicy._meta.get_field("keep").default,
        max_bytes=settings.SPECTATOR_RECORDING_MAX_BYTES,
        max_age_hours=settings.SPECTATOR_RECORDING_MAX_AGE_HOURS,
    )


def policy_of(row: RecordingPolicy | None) -> Policy:
    if row is None:
        return policy_default()
    return Policy(
        mode=row.mode, every_n=row.every_n, keep=row.keep, max_bytes=row.max_bytes, max_age_hours=row.max_age_hours
    )


def policy_cache_key(training_session_id: str) -> str:
    return f"recording-policy:{training_session_id}"


def recording_policy_for(training_session_id: str) -> Policy:
    """The session's recording policy, from the cache (kept ``POLICY_CACHE_SECONDS``; a change clears it)."""
    key = policy_cache_key(training_session_id)
    values = cache.get(key)
    if values is None:
        policy = policy_of(RecordingPolicy.objects.filter(pk=training_session_id).first())
        cache.set(key, tuple(policy.to_dict().values()), POLICY_CACHE_SECONDS)
        return policy
    return Policy(*values)


def recording_usage(training_session_id: str) -> dict:
    """How many episodes a session keeps recorded, and their bytes."""
    rows = RecordedEpisode.objects.filter(training_session_id=training_session_id, discarded_at__isnull=True)
    episodes, total = 0, 0
    for size in rows.values_list("bytes", flat=True):
        episodes += 1
        total += size
    return {"episodes": episodes, "bytes": total}


ORDERINGS = {
    "episode": ("episode",),
    "-episode": ("-episode",),
    "reward": ("reward", "episode"),
    "-reward": ("-reward", "-episode"),
    "recorded": ("created_at", "episode"),
    "-recorded": ("-created_at", "-episode"),
}


def recorded_episode_list(training_session_id: str, *, ordering: str = "-episode") -> QuerySet:
    """The session's kept recordings (not discarded), newest episode first by default."""
    return RecordedEpisode.objects.filter(training_session_id=training_session_id, discarded_at__isnull=True).order_by(
        *ORDERINGS[ordering]
    )


def recorded_episode_get(training_session_id: str, episode: int) -> RecordedEpisode:
    """Raises ``RecordedEpisode.DoesNotExist`` unless the episode is recorded and kept."""
    return RecordedEpisode.objects.get(
        training_session_id=training_session_id, episode=episode, discarded_at__isnull=True
    )


def episode_metrics(training_session_id: str, episode: int) -> dict | None:
    """The episode's MetricsData (its last metric point), or None when none was sent."""
    row = (
        MetricPoint.objects.filter(training_session_id=training_session_id, episode=episode)
        .order_by("-id")
        .values(*POINT_FIELDS)
        .first()
    )
    return metrics_data(row) if row else None


# --- Timelines: an episode laid out step by step, for replay ---------------------------------


@dataclass(frozen=True)
class FrameRef:
    header: dict
    offset: int
    size: int


@dataclass
class Timeline:
    """An episode's recorded steps in order: what each step shows and when it happened.

    Records without a step belong to the step recorded just before them. A decision that
    came inside a metric point and was sent twice (a retried batch) counts once.
    """

    training_session_id: str
    episode: int
    path: str
    steps: list[int] = field(default_factory=list)
    offsets: list[float] = field(default_factory=list)
    """Seconds from the first step, per step (recorded timestamps, else a steady pace)."""
    decisions: list[list[dict]] = field(default_factory=list)
    frames: list[FrameRef | None] = field(default_factory=list)
    """The last frame recorded at each step (or None)."""

    @property
    def length(self) -> int:
        return len(self.steps)

    def latest_decision(self, position: int) -> dict | None:
        """The latest decision at or before ``position`` (what the decision panel shows there)."""
        for index in range(position, -1, -1):
            if self.decisions[index]:
                return self.decisions[index][-1]
        return None

    def latest_frame(self, position: int) -> FrameRef | None:
        for index in range(position, -1, -1):
            if self.frames[index] is not None:
                return self.frames[index]
        return None

    def delay_after(self, position: int) -> float:
        """Seconds (at 1x) between ``position`` and the next step."""
        if position + 1 >= len(self.offsets):
            return 0.0
        return min(MAX_GAP_SECONDS, max(0.0, self.offsets[position + 1] - self.offsets[position]))

    def position_of(self, step: int) -> int:
        """The last position whose step is at most ``step`` (the first position below the first step)."""
        low, high = 0, len(self.steps)
        while low < high:
            middle = (low + high) // 2
            if self.steps[middle] <= step:
                low = middle + 1
            else:
                high = middle
        return max(0, low - 1)

    def image(self, frame: FrameRef) -> bytes | None:
        return recordings.image_at(self.path, frame.offset, frame.size)


def timeline_build(training_session_id: str, episode: int, path: str) -> Timeline:
    """Read an episode's file into a Timeline (decisions in memory, images left on disk)."""
    by_step: dict[int, dict] = {}
    seen_points: set[tuple] = set()
    current_step = 0
    for entry in recordings.entries(path):
        data = entry.data
        step = data.get("step")
        if isinstance(step, int) and not isinstance(step, bool):
            current_step = step
        else:
            step = current_step
        slot = by_step.setdefault(step, {"decisions": [], "frame": None, "time": None})
        stamp = data.get("timestamp")
        if isinstance(stamp, (int, float)) and (slot["time"] is None or stamp < slot["time"]):
            slot["time"] = float(stamp)
        if entry.kind == recordings.KIND_DECISION:
            identity = (data.get("stream"), data.get("seq"))
            if identity != (None, None):
                if identity in seen_points:
                    continue
                seen_points.add(identity)
            slot["decisions"].append(decision_floats(data))
        else:
            slot["frame"] = FrameRef(data, entry.image_offset, entry.image_size)
    timeline = Timeline(training_session_id, episode, path)
    for step in sorted(by_step):
        slot = by_step[step]
        timeline.steps.append(step)
        timeline.decisions.append(slot["decisions"])
        timeline.frames.append(slot["frame"])
        timeline.offsets.append(slot["time"])
    _offsets_fill(timeline.offsets)
    return timeline


def _offsets_fill(times: list[float | None]) -> None:
    """Turn recorded times (some missing) into seconds from the first step, never going back.

    A step without a time comes a steady beat after the one before it.
    """
    pace = 1.0 / DEFAULT_STEPS_PER_SECOND
    start = next((t for t in times if t is not None), None)
    previous = None
    for index, value in enumerate(times):
        if start is None:
            value = index * pace
        elif value is None:
            value = 0.0 if previous is None else previous + pace
        else:
            value -= start
        if previous is not None and value < previous:
            value = previous
        times[index] = value
        previous = value


_timelines: OrderedDict[tuple, Timeline] = OrderedDict()
_timelines_lock = threading.Lock()
TIMELINES_CACHED = 8


def timeline_of(row: RecordedEpisode) -> Timeline:
    """The episode's Timeline (file reads only), shared by the process's players while its file is unchanged."""
    key = (row.path, *recordings.file_version(row.path))
    with _timelines_lock:
        timeline = _timelines.get(key)
        if timeline is not None:
            _timelines.move_to_end(key)
            return timeline
    timeline = timeline_build(row.training_session_id, row.episode, row.path)
    with _timelines_lock:
        _timelines[key] = timeline
        while len(_timelines) > TIMELINES_CACHED:
            _timelines.popitem(last=False)
    return timeline


# --- Export -----------------------------------------------------------------------------------

EXPORT_FORMAT = "spectator.recorded_episode/1"
FRAME_ENCODINGS = ("base64", "none")


def recorded_episode_summary(row: RecordedEpisode) -> dict:
    return {
        "episode": row.episode,
        "decisions": row.decisions,
        "frames": row.frames,
        "steps": row.steps,
        "first_step": row.first_step,
        "last_step": row.last_step,
        "bytes": row.bytes,
        "reward": row.reward,
        "started_at": row.started_at,
        "ended_at": row.ended_at,
        "recorded_at": row.created_at.isoformat() if row.created_at else None,
        "updated_at": row.updated_at.isoformat() if row.updated_at else None,
    }


def recorded_episode_export_chunks(row: RecordedEpisode, *, frames: str = "base64") -> Iterator[bytes]:
    """One JSON document: the episode's summary and metrics, its decisions, then its frames.

    Decisions and frames come in the order they were recorded, each with its ``step``; frame
    images are base64 (``frames="base64"``) or left out (``"none"``: headers and sizes only).
    The file is read twice, a record at a time, so any size streams in constant memory.
    """
    head = {
        "format": EXPORT_FORMAT,
        "training_session_id": row.training_session_id,
        "episode": row.episode,
        "recording": recorded_episode_summary(row),
        "metrics": episode_metrics(row.training_session_id, row.episode),
    }
    yield orjson.dumps(head)[:-1] + b',"decisions":['
    pending: list[bytes] = []
    size = 0
    first = True
    seen_points: set[tuple] = set()
    for entry in recordings.entries(row.path):
        if entry.kind != recordings.KIND_DECISION:
            continue
        identity = (entry.data.get("stream"), entry.data.get("seq"))
        if identity != (None, None):
            if identity in seen_points:
                continue
            seen_points.add(identity)
        item = orjson.dumps(decision_floats(entry.data))
        pending.append(item if first else b"," + item)
        first = False
        size += len(item) + 1
        if size >= EXPORT_CHUNK_BYTES:
            yield b"".join(pending)
            pending, size = [], 0
    pending.append(b'],"frames":[')
    first = True
    for entry in recordings.entries(row.path, images=frames == "base64"):
        if entry.kind != recordings.KIND_FRAME:
            continue
        item = {
            "episode": entry.data.get("episode"),
            "step": entry.data.get("step"),
            "timestamp": entry.data.get("timestamp"),
            "mime": entry.data.get("mime"),
            "size": entry.image_size,
        }
        if entry.image is not None:
            item["data"] = base64.b64encode(entry.image).decode()
        encoded = orjson.dumps(item)
        pending.append(encoded if first else b"," + encoded)
        first = False
        size += len(encoded) + 1
        if size >= EXPORT_CHUNK_BYTES:
            yield b"".join(pending)
            pending, size = [], 0
    pending.append(b"]}")
    yield b"".join(pending)
