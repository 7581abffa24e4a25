"""Drop-in integrations for training code that already exists.

    from spectator_client.integrations.gymnasium import SpectatorWrapper     # wrap any Gymnasium env
    from spectator_client.integrations.sb3 import SpectatorCallback          # a Stable-Baselines3 callback
    from spectator_client.integrations.tensorboard import SummaryWriter      # add_scalar(tag, value, step)

Each streams through a ``SpectatorStream``, so it never blocks the training step. Pass one
with ``stream=`` to share it, or a ``training_session_id`` (and ``server_url``/``api_token``,
defaulting to ``$SPECTATOR_URL``/``$SPECTATOR_TOKEN``) and the integration opens its own and
closes it when training ends. ``room=True`` also opens a public room for it (or reuses the
caller's live one) and prints where to watch. They need numpy (``pip install
./spectator_client[gymnasium]``, ``[sb3]`` or ``[images]``); this module itself needs nothing more.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from spectator_client.manager import SpectatorManager
from spectator_client.models import AccessLevel, RoomAccessControl, SpectatorSession
from spectator_client.stream import SpectatorStream

logger = logging.getLogger("spectator_client")

T = TypeVar("T")
RoomRequest = bool | str | AccessLevel | RoomAccessControl | None
_UNSAFE_ID_CHARACTERS = re.compile(r"[^A-Za-z0-9_.-]+")
_UNSAFE_KEY_CHARACTERS = re.compile(r"[^A-Za-z0-9_.:/ -]+")
MAX_KEY_LENGTH = 64


def scalar_key(name: str) -> str:
    """A custom scalar's name as the server takes it: 1-64 of letters, digits, space and ``_ . : / -``."""
    return _UNSAFE_KEY_CHARACTERS.sub("_", str(name)).strip()[:MAX_KEY_LENGTH] or "value"


def training_session_id_from(name: str) -> str:
    """A valid training session id made from ``name`` plus a random suffix (``CartPole-v1-3f9a2c1b``)."""
    stem = _UNSAFE_ID_CHARACTERS.sub("-", name).strip("-_.")[:48] or "run"
    return f"{stem}-{secrets.token_hex(4)}"


def stream_open(
    stream: SpectatorStream | None, training_session_id: str | None, *, default_name: str, **options: Any
) -> tuple[SpectatorStream, bool]:
    """The caller's ``stream`` (not owned), or a new one (owned: the integration closes it).

    Without a ``training_session_id`` the new stream gets one made from ``default_name``.
    """
    if stream is not None:
        return stream, False
    training_session_id = training_session_id or training_session_id_from(default_name)
    options = {key: value for key, value in options.items() if value is not None}
    return SpectatorStream(training_session_id, **options), True


def room_open(
    stream: SpectatorStream,
    room: RoomRequest = True,
    *,
    name: str = "",
    algorithm: str | None = None,
    announce: bool = True,
) -> SpectatorSession | None:
    """Open a room showing ``stream``'s training session, or reuse the caller's live room of that level.

    ``room`` is True (public), an access level, or a ``RoomAccessControl``; False or None opens
    none. Prints the room's address (and a generated password) unless ``announce`` is False.
    Blocks until the server answers. Raises the client's errors (``AccessDenied``,
    ``ServerUnavailable``…).
    """
    if room is None or room is False:
        return None
    if isinstance(room, RoomAccessControl):
        access_control = room
    else:
        access_control = RoomAccessControl(AccessLevel.PUBLIC if room is True else AccessLevel(room))
    config = stream.config
    training_session_id = stream.training_session_id

    async def open_room() -> SpectatorSession:
        async with SpectatorManager(config.server_url, config.api_token, timeout=config.timeout) as manager:
            if access_control.access_level != AccessLevel.PASSWORD:
                for existing in await manager.list_active_sessions():
                    control = existing.get("access_control") or {}
                    if (
                        existing["training_session_id"] == training_session_id
                        and control.get("access_level") == access_control.access_level.value
                    ):
                        return SpectatorSession.from_room(existing)
            return await manager.create_spectator_session(
                training_session_id, name=name, algorithm=algorithm, access_control=access_control
            )

    session = run_coroutine(open_room)
    if announce:
        password = f" (password: {session.room_password})" if session.room_password else ""
        print(
            f"Spectator: watch {training_session_id} live at {config.server_url}/r/{session.room_code}/{password}",
            file=sys.stderr,
            flush=True,
        )
    logger.info("room %s shows training session %s", session.room_code, training_session_id)
    return session


def run_coroutine(factory: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion from synchronous code, even where an event loop already runs (Jupyter)."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = asyncio.run(factory())
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread below
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="spectator-room-open")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
