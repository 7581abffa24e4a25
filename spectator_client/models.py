"""The client's data: MetricsData, the mode and access enums, access control, sessions and rooms."""

from __future__ import annotations

import dataclasses
import enum
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class SpectatorMode(str, enum.Enum):
    LIVE_TRAINING = "live_training"
    REPLAY = "replay"
    COMPARISON = "comparison"

    def __str__(self) -> str:
        return self.value


class RecordingMode(str, enum.Enum):
    """What a training session records for replay: every episode, every Nth, the K best and K worst, nothing."""

    ALL = "all"
    EVERY_NTH = "every_nth"
    BEST_WORST = "best_worst"
    OFF = "off"

    def __str__(self) -> str:
        return self.value


class AccessLevel(str, enum.Enum):
    PUBLIC = "public"
    PASSWORD = "password"
    INVITE_ONLY = "invite_only"
    PRIVATE = "private"

    def __str__(self) -> str:
        return self.value


def plain(value: Any) -> Any:
    """Turn numpy scalars and arrays (anything with ``item``/``tolist``) into JSON-able Python values."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, enum.Enum):
        return value.value
    if hasattr(value, "tolist"):
        return plain(value.tolist())
    if hasattr(value, "item"):
        return plain(value.item())
    return value


def parse_datetime(value: Any) -> datetime | None:
    """Read the server's ISO 8601 timestamps (``…Z`` included)."""
    if value is None or isinstance(value, datetime):
        return value
    text = str(value)
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    return datetime.fromisoformat(text)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass
class MetricsData:
    """One training update: the seed's fields, optional decision and speed fields, custom scalars."""

    timestamp: float = field(default_factory=time.time)
    episode: int = 0
    total_episodes: int | None = None
    current_reward: float | None = None
    average_reward: float | None = None
    best_reward: float | None = None
    episode_length: int | None = None
    win_rate: float | None = None
    loss_value: float | None = None
    learning_rate: float | None = None
    epsilon: float | None = None
    model_generation: int | None = None
    algorithm: str = ""
    training_time_elapsed: float | None = None
    action_probabilities: dict[str, float] | list[float] | None = None
    state_values: float | dict[str, float] | list[float] | None = None
    q_values: list[float] | dict[str, float] | None = None
    selected_action: int | str | None = None
    actions_per_second: float | None = None
    frames_per_second: float | None = None
    memory_usage_mb: float | None = None
    extra: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return every field as JSON-able values (numpy values become Python numbers)."""
        data = {name: plain(getattr(self, name)) for name in FIELD_NAMES}
        data["extra"] = plain(dict(self.extra or {}))
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MetricsData:
        """Build a MetricsData from a dict; keys that are not fields (``stream``, ``seq``…) are ignored."""
        values = {name: data[name] for name in FIELD_NAMES if name in data and data[name] is not None}
        if "algorithm" in data and data["algorithm"] is None:
            values["algorithm"] = ""
        values["extra"] = dict(data.get("extra") or {})
        return cls(**values)


FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(MetricsData) if f.name != "extra")
RESERVED_KEYS = frozenset({"stream", "seq"})


def metrics_coerce(metrics: MetricsData | dict[str, Any]) -> MetricsData:
    """Accept a MetricsData or a dict; a dict's unknown numeric keys become ``extra`` scalars.

    Raises ``TypeError`` for anything else and for an unknown key whose value is not a number.
    """
    if isinstance(metrics, MetricsData):
        return metrics
    if not isinstance(metrics, dict):
        raise TypeError(f"Expected MetricsData or dict, got {type(metrics).__name__}.")
    known = {name: metrics[name] for name in FIELD_NAMES if name in metrics}
    extra = dict(metrics.get("extra") or {})
    for key, value in metrics.items():
        if key in known or key == "extra" or key in RESERVED_KEYS:
            continue
        value = plain(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"Unknown metric {key!r}: custom scalars must be numbers (they go in extra).")
        extra[key] = value
    return MetricsData(**known, extra=extra)


def metrics_point(metrics: MetricsData | dict[str, Any], *, stream: str, seq: int) -> dict[str, Any]:
    """The wire form of one metric point: set fields only, plus the sender's ``stream`` and ``seq``."""
    data = metrics_coerce(metrics).to_dict()
    point = {name: value for name, value in data.items() if value is not None}
    if not point.get("extra"):
        point.pop("extra", None)
    if not point.get("algorithm"):
        point.pop("algorithm", None)
    point["stream"] = stream
    point["seq"] = seq
    return point


def decision_payload(
    action_probabilities: Any = None,
    state_values: Any = None,
    q_values: Any = None,
    selected_action: Any = None,
    *,
    episode: int | None = None,
    step: int | None = None,
    timestamp: float | None = None,
) -> dict[str, Any]:
    """The wire form of one bot decision."""
    return {
        "action_probabilities": plain(action_probabilities),
        "state_values": plain(state_values),
        "q_values": plain(q_values),
        "selected_action": plain(selected_action),
        "episode": plain(episode),
        "step": plain(step),
        "timestamp": time.time() if timestamp is None else float(timestamp),
    }


@dataclass
class RoomAccessControl:
    """Who may join a room (DESIGN.md section 2)."""

    access_level: AccessLevel | str = AccessLevel.PUBLIC
    password: str | None = None
    max_spectators: int = 10
    allowed_users: set[str] = field(default_factory=set)
    blocked_users: set[str] = field(default_factory=set)
    require_approval: bool = False
    auto_approve_timeout: int = 0
    # Read from the server; change them with lock_room / set_listed / set_approval.
    locked: bool = False
    listed: bool = True
    approval_ttl: int = 0

    def __post_init__(self):
        self.access_level = AccessLevel(self.access_level)
        self.allowed_users = set(self.allowed_users or ())
        self.blocked_users = set(self.blocked_users or ())

    def to_payload(self) -> dict[str, Any]:
        """The API's ``access_control`` object (with the password, when one is set)."""
        payload: dict[str, Any] = {
            "access_level": self.access_level.value,
            "max_spectators": self.max_spectators,
            "allowed_users": sorted(self.allowed_users),
            "blocked_users": sorted(self.blocked_users),
            "require_approval": self.require_approval,
            "auto_approve_timeout": self.auto_approve_timeout,
        }
        if self.password:
            payload["password"] = self.password
        return payload

    def to_dict(self) -> dict[str, Any]:
        """A displayable form: never the password, only whether there is one."""
        data = self.to_payload()
        data.pop("password", None)
        data["password_protected"] = self.access_level == AccessLevel.PASSWORD
        return data

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> RoomAccessControl:
        return cls(
            access_level=data.get("access_level", AccessLevel.PUBLIC),
            max_spectators=data.get("max_spectators", 10),
            allowed_users=set(data.get("allowed_users") or ()),
            blocked_users=set(data.get("blocked_users") or ()),
            require_approval=bool(data.get("require_approval", False)),
            auto_approve_timeout=int(data.get("auto_approve_timeout") or 0),
            locked=bool(data.get("locked", False)),
            listed=bool(data.get("listed", True)),
            approval_ttl=int(data.get("approval_ttl") or 0),
        )


@dataclass
class SpectatorSession:
    """A spectator session: a room that shows one training session."""

    session_id: str
    room_code: str
    training_session_id: str
    spectator_mode: SpectatorMode = SpectatorMode.LIVE_TRAINING
    room_password: str | None = None
    created_at: datetime | None = None
    expires_at: datetime | None = None
    max_spectators: int = 10
    current_spectators: int = 0
    access_level: AccessLevel = AccessLevel.PUBLIC
    room_status: str = "active"

    @property
    def room_id(self) -> str:
        return self.session_id

    @classmethod
    def from_room(cls, room: dict[str, Any], *, room_password: str | None = None) -> SpectatorSession:
        control = room.get("access_control") or {}
        return cls(
            session_id=str(room["room_id"]),
            room_code=room["room_code"],
            training_session_id=room["training_session_id"],
            spectator_mode=SpectatorMode(room.get("spectator_mode") or SpectatorMode.LIVE_TRAINING),
            room_password=room_password if room_password is not None else room.get("room_password"),
            created_at=parse_datetime(room.get("created_at")),
            expires_at=parse_datetime(room.get("expires_at")),
            max_spectators=int(control.get("max_spectators", 10)),
            current_spectators=int(room.get("current_spectators") or 0),
            access_level=AccessLevel(control.get("access_level", AccessLevel.PUBLIC)),
            room_status=room.get("room_status") or "active",
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "room_code": self.room_code,
            "room_password": self.room_password,
            "training_session_id": self.training_session_id,
            "spectator_mode": self.spectator_mode.value,
            "created_at": _iso(self.created_at),
            "expires_at": _iso(self.expires_at),
            "max_spectators": self.max_spectators,
            "current_spectators": self.current_spectators,
            "access_level": self.access_level.value,
            "room_status": self.room_status,
        }


@dataclass
class RoomInfo:
    """A room as the caller may see it (managers also see allowed and blocked users)."""

    room_id: str
    room_code: str
    training_session_id: str
    creator_id: str
    created_at: datetime | None
    expires_at: datetime | None
    access_control: RoomAccessControl
    current_spectators: int = 0
    spectator_list: list[dict[str, Any]] = field(default_factory=list)
    room_status: str = "active"
    room_password: str | None = None
    name: str = ""
    spectator_mode: SpectatorMode = SpectatorMode.LIVE_TRAINING
    can_manage: bool = False
    pending_requests: int | None = None

    @classmethod
    def from_api(cls, room: dict[str, Any], *, spectator_list: list[dict[str, Any]] | None = None) -> RoomInfo:
        return cls(
            room_id=str(room["room_id"]),
            room_code=room["room_code"],
            training_session_id=room["training_session_id"],
            creator_id=room.get("creator_id") or "",
            created_at=parse_datetime(room.get("created_at")),
            expires_at=parse_datetime(room.get("expires_at")),
            access_control=RoomAccessControl.from_api(room.get("access_control") or {}),
            current_spectators=int(room.get("current_spectators") or 0),
            spectator_list=list(spectator_list or []),
            room_status=room.get("room_status") or "active",
            room_password=room.get("room_password"),
            name=room.get("name") or "",
            spectator_mode=SpectatorMode(room.get("spectator_mode") or SpectatorMode.LIVE_TRAINING),
            can_manage=bool(room.get("can_manage")),
            pending_requests=room.get("pending_requests"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "room_id": self.room_id,
            "room_code": self.room_code,
            "name": self.name,
            "training_session_id": self.training_session_id,
            "creator_id": self.creator_id,
            "created_at": _iso(self.created_at),
            "expires_at": _iso(self.expires_at),
            "access_control": self.access_control.to_dict(),
            "current_spectators": self.current_spectators,
            "spectator_list": list(self.spectator_list),
            "room_status": self.room_status,
            "room_password": self.room_password,
            "spectator_mode": self.spectator_mode.value,
            "can_manage": self.can_manage,
            "pending_requests": self.pending_requests,
        }
