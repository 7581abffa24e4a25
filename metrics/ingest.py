"""Validation of what trainers send: metric points, bot decisions and frames.

Plain Python on purpose: ingest runs at tens of thousands of points a second, where a DRF
serializer per point would be the bottleneck. Every error names the offending field.
"""

from __future__ import annotations

import json
import math
import re
import struct
from functools import lru_cache

from django.conf import settings

MAX_POINTS_PER_BATCH = 1000
MAX_DECISIONS_PER_BATCH = 1000
MAX_EXTRA_KEYS = 64
MAX_ACTIONS = 256
MAX_STRING = 100
MAX_STREAM = 64
PROBABILITY_SUM_TOLERANCE = 0.01
KEY_PATTERN = re.compile(r"[A-Za-z0-9_.:/ -]{1,64}")
STREAM_PATTERN = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
FRAME_MIMES = {"image/png": (b"\x89PNG\r\n\x1a\n",), "image/jpeg": (b"\xff\xd8\xff",), "image/webp": (b"RIFF",)}
MAX_FRAME_HEADER = 4096

FLOAT_FIELDS = (
    "current_reward",
    "average_reward",
    "best_reward",
    "loss_value",
    "learning_rate",
    "epsilon",
    "training_time_elapsed",
    "actions_per_second",
    "frames_per_second",
    "memory_usage_mb",
)
NON_NEGATIVE_FLOATS = {
    "learning_rate",
    "training_time_elapsed",
    "actions_per_second",
    "frames_per_second",
    "memory_usage_mb",
}
INT_FIELDS = ("total_episodes", "episode_length", "model_generation")
DECISION_FIELDS = ("action_probabilities", "state_values", "q_values", "selected_action")
KNOWN_FIELDS = {
    "seq",
    "stream",
    "timestamp",
    "episode",
    "win_rate",
    "algorithm",
    "extra",
    *FLOAT_FIELDS,
    *INT_FIELDS,
    *DECISION_FIELDS,
}


class IngestError(ValueError):
    """Bad input from a trainer; ``field`` names where (``points.3.win_rate``)."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


_finite = math.isfinite
_MAX_INTEGER = 2**62


@lru_cache(maxsize=4096)
def _key_ok(key: str) -> bool:
    return KEY_PATTERN.fullmatch(key) is not None


@lru_cache(maxsize=256)
def _stream_ok(stream: str) -> bool:
    return STREAM_PATTERN.fullmatch(stream) is not None


def _number(value, field: str, *, allow_none: bool = True) -> float | None:
    if value is None:
        if allow_none:
            return None
        raise IngestError(field, "This field is required.")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise IngestError(field, "Must be a number.")
    value = float(value)
    if not math.isfinite(value):
        raise IngestError(field, "Must be a finite number.")
    return value


def _integer(value, field: str, *, allow_none: bool = True, minimum: int | None = 0) -> int | None:
    if value is None:
        if allow_none:
            return None
        raise IngestError(field, "This field is required.")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise IngestError(field, "Must be an integer.")
    if minimum is not None and value < minimum:
        raise IngestError(field, f"Must be at least {minimum}.")
    if abs(value) > _MAX_INTEGER:
        raise IngestError(field, "Out of range.")
    return value


def _string(value, field: str, *, limit: int = MAX_STRING) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise IngestError(field, "Must be a string.")
    if len(value) > limit:
        raise IngestError(field, f"At most {limit} characters.")
    return value


def _key(key, field: str) -> str:
    if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):
        raise IngestError(field, "Keys are 1-64 characters: letters, digits, space and _ . : / -.")
    return key


def _number_map_or_list(value, field: str, *, non_negative: bool = False):
    """A dict of named numbers or a list of numbers, bounded in size."""
    if isinstance(value, dict):
        if len(value) > MAX_ACTIONS:
            raise IngestError(field, f"At most {MAX_ACTIONS} entries.")
        out = {}
        for key, item in value.items():
            number = _number(item, f"{field}.{_key(key, field)}", allow_none=False)
            if non_negative and number < 0:
                raise IngestError(f"{field}.{key}", "Must not be negative.")
            out[key] = number
        return out
    if isinstance(value, (list, tuple)):
        if len(value) > MAX_ACTIONS:
            raise IngestError(field, f"At most {MAX_ACTIONS} entries.")
        out = []
        for index, item in enumerate(value):
            number = _number(item, f"{field}.{index}", allow_none=False)
            if non_negative and number < 0:
                raise IngestError(f"{field}.{index}", "Must not be negative.")
            out.append(number)
        return out
    raise IngestError(field, "Must be an object of numbers or a list of numbers.")


def decision_clean(data: dict, field: str = "") -> dict | None:
    """Validate the decision fields of ``data``; return them, or None when there are none."""
    prefix = f"{field}." if field else ""
    if (
        data.get("action_probabilities") is None
        and data.get("q_values") is None
        and data.get("selected_action") is None
        and data.get("state_values") is None
    ):
        return None
    decision = {}
    probabilities = data.get("action_probabilities")
    if probabilities is not None:
        probabilities = _number_map_or_list(probabilities, f"{prefix}action_probabilities", non_negative=True)
        values = probabilities.values() if isinstance(probabilities, dict) else probabilities
        total = sum(values)
        if values and abs(total - 1.0) > PROBABILITY_SUM_TOLERANCE:
            raise IngestError(f"{prefix}action_probabilities", f"Probabilities must sum to 1 (got {total:.4f}).")
    decision["action_probabilities"] = probabilities
    state_values = data.get("state_values")
    if state_values is not None and not isinstance(state_values, (dict, list, tuple)):
        state_values = _number(state_values, f"{prefix}state_values")
    elif state_values is not None:
        state_values = _number_map_or_list(state_values, f"{prefix}state_values")
    decision["state_values"] = state_values
    q_values = data.get("q_values")
    decision["q_values"] = None if q_values is None else _number_map_or_list(q_values, f"{prefix}q_values")
    selected = data.get("selected_action")
    if selected is not None:
        if isinstance(selected, bool) or not isinstance(selected, (str, int)):
            raise IngestError(f"{prefix}selected_action", "Must be an action name or index.")
        if isinstance(selected, str):
            selected = _string(selected, f"{prefix}selected_action", limit=64)
    decision["selected_action"] = selected
    return decision


def metric_point_clean(data, field: str = "point", *, default_stream: str = "") -> dict:
    """Validate one MetricsData dict; return the column values of a MetricPoint.

    Values of the expected type take a fast path (this runs for every point at tens of
    thousands a second); anything else goes through the checks that name the field.
    """
    if not isinstance(data, dict):
        raise IngestError(field, "Must be an object.")
    if not data.keys() <= KNOWN_FIELDS:
        unknown = set(data) - KNOWN_FIELDS
        raise IngestError(f"{field}.{sorted(unknown)[0]}", "Unknown field (put custom scalars in extra).")
    get = data.get
    stream = get("stream") or default_stream
    if not isinstance(stream, str) or not _stream_ok(stream):
        raise IngestError(f"{field}.stream", "Required: 1-64 letters, digits or _ . : - naming the sender.")
    timestamp = get("timestamp")
    if type(timestamp) is not float or not _finite(timestamp):
        timestamp = _number(timestamp, f"{field}.timestamp", allow_none=False)
    if timestamp < 0:
        raise IngestError(f"{field}.timestamp", "Must not be negative.")
    point = {
        "stream": stream,
        "seq": _integer(get("seq"), f"{field}.seq", allow_none=False),
        "timestamp": timestamp,
        "episode": _integer(get("episode"), f"{field}.episode", allow_none=False),
        "algorithm": _string(get("algorithm"), f"{field}.algorithm"),
    }
    for name in FLOAT_FIELDS:
        value = get(name)
        if value is not None:
            if type(value) is not float or not _finite(value):
                value = _number(value, f"{field}.{name}")
            if value < 0 and name in NON_NEGATIVE_FLOATS:
                raise IngestError(f"{field}.{name}", "Must not be negative.")
        point[name] = value
    for name in INT_FIELDS:
        value = get(name)
        if value is not None and (type(value) is not int or not 0 <= value <= _MAX_INTEGER):
            value = _integer(value, f"{field}.{name}")
        point[name] = value
    win_rate = get("win_rate")
    if win_rate is not None:
        if type(win_rate) is not float or not _finite(win_rate):
            win_rate = _number(win_rate, f"{field}.win_rate")
        if not 0.0 <= win_rate <= 1.0:
            raise IngestError(f"{field}.win_rate", "Must be between 0 and 1.")
    point["win_rate"] = win_rate
    extra = get("extra") or {}
    if not isinstance(extra, dict):
        raise IngestError(f"{field}.extra", "Must be an object of named numbers.")
    if len(extra) > MAX_EXTRA_KEYS:
        raise IngestError(f"{field}.extra", f"At most {MAX_EXTRA_KEYS} custom scalars.")
    clean_extra = {}
    for key, value in extra.items():
        if type(key) is not str or not _key_ok(key):
            _key(key, f"{field}.extra")
        if type(value) is not float or not _finite(value):
            value = _number(value, f"{field}.extra.{key}", allow_none=False)
        clean_extra[key] = value
    point["extra"] = clean_extra
    point["decision"] = decision_clean(data, field)
    return point


def metric_points_clean(points, field: str = "points", *, default_stream: str = "") -> list[dict]:
    if not isinstance(points, list):
        raise IngestError(field, "Must be a list.")
    if len(points) > MAX_POINTS_PER_BATCH:
        raise IngestError(field, f"At most {MAX_POINTS_PER_BATCH} points a batch.")
    return [metric_point_clean(p, f"{field}.{i}", default_stream=default_stream) for i, p in enumerate(points)]


def decisions_clean(decisions, field: str = "decisions") -> list[dict]:
    if not isinstance(decisions, list):
        raise IngestError(field, "Must be a list.")
    if len(decisions) > MAX_DECISIONS_PER_BATCH:
        raise IngestError(field, f"At most {MAX_DECISIONS_PER_BATCH} decisions a batch.")
    out = []
    for index, data in enumerate(decisions):
        if not isinstance(data, dict):
            raise IngestError(f"{field}.{index}", "Must be an object.")
        decision = decision_clean(data, f"{field}.{index}")
        if decision is None or decision["action_probabilities"] is None and decision["q_values"] is None:
            raise IngestError(
                f"{field}.{index}.action_probabilities", "A decision needs action_probabilities or q_values."
            )
        decision["episode"] = _integer(data.get("episode"), f"{field}.{index}.episode")
        decision["step"] = _integer(data.get("step"), f"{field}.{index}.step")
        decision["timestamp"] = _number(data.get("timestamp"), f"{field}.{index}.timestamp")
        out.append(decision)
    return out


def frame_parse(message: bytes) -> tuple[dict, bytes]:
    """Split a binary frame message (4-byte big-endian header length, JSON header, image).

    Returns the validated header and the image bytes.
    """
    limit = settings.SPECTATOR_MAX_FRAME_BYTES
    if len(message) < 4:
        raise IngestError("frame", "Too short for a frame header.")
    (header_length,) = struct.unpack(">I", message[:4])
    if header_length == 0 or header_length > MAX_FRAME_HEADER or 4 + header_length > len(message):
        raise IngestError("frame.header", f"Header length must be 1-{MAX_FRAME_HEADER} bytes and inside the message.")
    try:
        header = json.loads(message[4 : 4 + header_length])
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):  # RecursionError: "[[[[…" too deep
        raise IngestError("frame.header", "Header is not valid JSON.") from None
    image = message[4 + header_length :]
    header = frame_header_clean(header, len(image), limit)
    if not any(image.startswith(magic) for magic in FRAME_MIMES[header["mime"]]):
        raise IngestError("frame.image", f"The bytes are not a {header['mime']} image.")
    return header, image


def frame_header_clean(header, image_size: int, limit: int) -> dict:
    if not isinstance(header, dict):
        raise IngestError("frame.header", "Must be an object.")
    if header.get("type", "frame") != "frame":
        raise IngestError("frame.type", "Must be 'frame'.")
    mime = header.get("mime")
    if mime not in FRAME_MIMES:
        raise IngestError("frame.mime", f"Choose one of: {', '.join(FRAME_MIMES)}.")
    if image_size == 0:
        raise IngestError("frame.image", "The image is empty.")
    if image_size > limit:
        raise IngestError("frame.image", f"At most {limit} bytes (got {image_size}).")
    return {
        "type": "frame",
        "mime": mime,
        "episode": _integer(header.get("episode"), "frame.episode"),
        "step": _integer(header.get("step"), "frame.step"),
        "timestamp": _number(header.get("timestamp"), "frame.timestamp"),
    }


def frame_pack(header: dict, image: bytes) -> bytes:
    """Build the binary frame message spectators receive (same layout as ingest)."""
    raw_header = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack(">I", len(raw_header)) + raw_header + image
