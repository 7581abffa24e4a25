"""Spectator's client: stream a training run to a Spectator server and watch it live.

Pure Python (httpx and websockets); it never imports Django, so a training machine needs
only ``pip install ./spectator_client``.

    from spectator_client import SpectatorManager, MetricsData, SpectatorStream
"""

from spectator_client.errors import (
    AccessDenied,
    AuthenticationRequired,
    Banned,
    Conflict,
    InvalidPassword,
    NotFoundError,
    RateLimited,
    RoomClosed,
    RoomExpired,
    RoomFull,
    RoomLocked,
    RoomNotFound,
    ServerUnavailable,
    SpectatorError,
    StreamBehind,
    TimedOut,
    TrainingSessionNotFound,
    ValidationError,
)
from spectator_client.frames import frame_pack, frame_parse
from spectator_client.live import RoomListener
from spectator_client.manager import SpectatorManager, TrainingMetricsOverlay
from spectator_client.models import (
    AccessLevel,
    MetricsData,
    RecordingMode,
    RoomAccessControl,
    RoomInfo,
    SpectatorMode,
    SpectatorSession,
)
from spectator_client.rooms import SpectatorRoomManager
from spectator_client.stream import SpectatorStream, SyncSpectator

__version__ = "0.1.0"

__all__ = [
    "AccessDenied",
    "AccessLevel",
    "AuthenticationRequired",
    "Banned",
    "Conflict",
    "InvalidPassword",
    "MetricsData",
    "NotFoundError",
    "RateLimited",
    "RecordingMode",
    "RoomAccessControl",
    "RoomClosed",
    "RoomExpired",
    "RoomFull",
    "RoomInfo",
    "RoomListener",
    "RoomLocked",
    "RoomNotFound",
    "ServerUnavailable",
    "SpectatorError",
    "SpectatorManager",
    "SpectatorMode",
    "SpectatorRoomManager",
    "SpectatorSession",
    "SpectatorStream",
    "StreamBehind",
    "SyncSpectator",
    "TimedOut",
    "TrainingMetricsOverlay",
    "TrainingSessionNotFound",
    "ValidationError",
    "frame_pack",
    "frame_parse",
]
