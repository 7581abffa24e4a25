"""SpectatorManager and TrainingMetricsOverlay: the seed's session-level API over HTTP and the room socket."""

from __future__ import annotations

import base64
import collections
from typing import Any

import httpx

from spectator_client.errors import RoomNotFound, TrainingSessionNotFound, ValidationError
from spectator_client.frames import frame_pack
from spectator_client.live import Callback, RoomListener
from spectator_client.models import (
    AccessLevel,
    MetricsData,
    RecordingMode,
    RoomAccessControl,
    SpectatorMode,
    SpectatorSession,
    decision_payload,
    metrics_coerce,
)
from spectator_client.rooms import _ref_key, room_join, room_leave, room_path, session_path, training_session_ensure
from spectator_client.sequence import PointSequence
from spectator_client.transport import ApiConfig, AsyncApi

MAX_HISTORY_PAGE = 5000


class SpectatorManager:
    """Spectator sessions (rooms) for training sessions: create, join, stream metrics, listen.

    A ``session_id`` is a room's id (or its code); for the ingest methods a training
    session id works too. ``server_url`` defaults to ``$SPECTATOR_URL`` (``game_server_url``
    is the seed's alias), ``api_token`` to ``$SPECTATOR_TOKEN``. Every network method is a
    coroutine; ``cleanup()`` closes listeners, leaves joined rooms and closes connections.
    """

    def __init__(
        self,
        server_url: str | None = None,
        api_token: str | None = None,
        *,
        game_server_url: str | None = None,
        timeout: float = 10.0,
        stream: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        self.config = ApiConfig.build(server_url, api_token, game_server_url=game_server_url, timeout=timeout)
        self.api = AsyncApi(self.config, transport=transport)
        self.sequence = PointSequence(stream)
        # Room code or id (upper-cased) -> the training session it shows, and -> the room id.
        self._training_ids: dict[str, str] = {}
        self._room_ids: dict[str, str] = {}
        self._listeners: dict[str, RoomListener] = {}
        self._joined: set[str] = set()

    @property
    def server_url(self) -> str:
        return self.config.server_url

    @property
    def stream(self) -> str:
        """This client's stream id: its metric points are numbered under it."""
        return self.sequence.stream

    async def __aenter__(self) -> SpectatorManager:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.cleanup()

    # --- Sessions ------------------------------------------------------------------------------

    async def create_spectator_session(
        self,
        training_session_id: str,
        spectator_mode: SpectatorMode | str = SpectatorMode.LIVE_TRAINING,
        max_spectators: int = 10,
        session_duration_hours: float = 24,
        password_protected: bool = False,
        enable_metrics_overlay: bool = True,
        enable_performance_graphs: bool = True,
        enable_decision_visualization: bool = True,
        *,
        name: str = "",
        algorithm: str | None = None,
        total_episodes: int | None = None,
        access_control: RoomAccessControl | None = None,
        custom_room_code: str | None = None,
    ) -> SpectatorSession:
        """Create a room showing ``training_session_id`` (creating the training session when missing).

        A password-protected session gets a generated password, in ``room_password`` this
        once. ``access_control`` overrides ``max_spectators`` and ``password_protected``.
        Raises ``ValidationError`` naming the field, ``AccessDenied``.
        """
        await training_session_ensure(
            self.api, training_session_id, name=name or None, algorithm=algorithm, total_episodes=total_episodes
        )
        if access_control is None:
            level = AccessLevel.PASSWORD if password_protected else AccessLevel.PUBLIC
            access_control = RoomAccessControl(access_level=level, max_spectators=max_spectators)
        room = await self.api.post(
            "rooms/",
            {
                "training_session_id": training_session_id,
                "name": name,
                "access_control": access_control.to_payload(),
                "room_duration_hours": session_duration_hours,
                "custom_room_code": custom_room_code,
                "spectator_mode": SpectatorMode(spectator_mode).value,
                "enable_metrics_overlay": enable_metrics_overlay,
                "enable_performance_graphs": enable_performance_graphs,
                "enable_decision_visualization": enable_decision_visualization,
            },
        )
        self._remember_room(room)
        return SpectatorSession.from_room(room)

    async def join_spectator_session(
        self,
        session_id: str,
        spectator_name: str | None = None,
        password: str | None = None,
        user_id: str | None = None,
    ) -> dict[str, Any]:
        """Join a session's room: ``status`` is ``approved`` (``websocket_url`` carries a short-lived
        ticket) or ``pending_approval`` (join again later to learn the outcome).

        Raises ``RoomNotFound``, ``InvalidPassword``, ``AccessDenied``, ``RoomFull``,
        ``RoomExpired``, ``RateLimited``.
        """
        result = await room_join(self.api, session_id, display_name=spectator_name, password=password, user_id=user_id)
        if result.get("status") == "approved":
            self._joined.add(str(result["room_id"]))
        return result

    async def leave_spectator_session(self, session_id: str, spectator_id: Any = None) -> None:
        """Leave a session's room (freeing the seat) and stop listening to it. Leaving twice is fine.

        ``spectator_id`` is accepted for the seed's signature; identity is the token's user.
        """
        room_id = await self._room_id(session_id)
        await self._stop_listener(room_id)
        await room_leave(self.api, session_id)
        self._joined.discard(room_id)

    async def get_session_info(self, session_id: str) -> dict[str, Any]:
        """The session's room as the server shows it to the caller, plus ``session_id``."""
        room = await self.api.get(room_path(session_id))
        self._remember_room(room)
        return {"session_id": str(room["room_id"]), **room}

    async def list_active_sessions(self) -> list[dict[str, Any]]:
        """The live rooms the caller manages."""
        rooms = await self.api.get_all("rooms/")
        for room in rooms:
            self._remember_room(room)
        return [{"session_id": str(room["room_id"]), **room} for room in rooms]

    async def close_session(self, session_id: str) -> dict[str, Any]:
        """Close the session's room (spectators leave; the training session stays open).

        Raises ``AccessDenied`` unless the caller manages the room.
        """
        room = await self.api.post(room_path(session_id, "close"))
        await self._stop_listener(str(room["room_id"]))
        self._joined.discard(str(room["room_id"]))
        return {"session_id": str(room["room_id"]), **room}

    # --- Streaming in -----------------------------------------------------------------------

    async def update_training_metrics(self, session_id: str, metrics_data: MetricsData | dict) -> dict[str, Any]:
        """Send one metric point to the training session the room shows.

        Returns the server's ``{"accepted", "duplicates", "last_seq", "decisions"}``. Raises
        ``ValidationError`` naming the field (``points.0.win_rate``), ``AccessDenied``.
        """
        return await self.update_training_metrics_batch(session_id, [metrics_data])

    async def update_training_metrics_batch(
        self, session_id: str, metrics: list[MetricsData | dict], decisions: list[dict] | None = None
    ) -> dict[str, Any]:
        """Send several metric points (up to 1,000) and decisions in one request."""
        points = [self.sequence.point(item) for item in metrics]
        body: dict[str, Any] = {"points": points}
        if decisions:
            body["decisions"] = decisions
        return await self._ingest(session_id, "ingest", json=body)

    async def send_bot_decision(
        self,
        session_id: str,
        action_probabilities: Any = None,
        state_values: Any = None,
        q_values: Any = None,
        selected_action: Any = None,
        *,
        episode: int | None = None,
        step: int | None = None,
    ) -> dict[str, Any]:
        """Broadcast one bot decision (action probabilities and/or Q-values) to the session's rooms."""
        decision = decision_payload(
            action_probabilities, state_values, q_values, selected_action, episode=episode, step=step
        )
        return await self._ingest(session_id, "ingest", json={"decisions": [decision]})

    async def send_frame(
        self,
        session_id: str,
        image: bytes,
        mime: str | None = None,
        *,
        episode: int | None = None,
        step: int | None = None,
    ) -> dict[str, Any]:
        """Broadcast one game frame (PNG, JPEG or WebP bytes) to the session's rooms."""
        content = frame_pack(image, mime, episode=episode, step=step)
        return await self._ingest(
            session_id, "frames", content=content, headers={"Content-Type": "application/octet-stream"}
        )

    async def set_training_status(self, session_id: str, status: str, message: str = "") -> dict[str, Any]:
        """Tell spectators the trainer is ``running``, ``paused`` or ``completed``."""
        return await self._ingest(session_id, "status", json={"status": status, "message": message})

    async def get_metrics_history(
        self, session_id: str, *, after_id: int = 0, limit: int = 1000
    ) -> list[tuple[int, MetricsData]]:
        """Stored metric points after ``after_id``, oldest first, as ``(id, MetricsData)`` pairs."""
        training_id = await self.training_session_id(session_id)
        token = self.api.visitor_tokens.get(_ref_key(session_id))
        rows: list[tuple[int, MetricsData]] = []
        while len(rows) < limit:
            want = min(MAX_HISTORY_PAGE, limit - len(rows))
            page = await self.api.get(
                session_path(training_id, "metrics"), after_id=after_id, limit=want, visitor_token=token
            )
            rows.extend((row["id"], MetricsData.from_dict(row["data"])) for row in page)
            if len(page) < want:
                break
            after_id = page[-1]["id"]
        return rows

    async def _ingest(self, session_id: str, endpoint: str, **kwargs: Any) -> dict[str, Any]:
        training_id = await self.training_session_id(session_id)
        try:
            return await self.api.request("POST", session_path(training_id, endpoint), **kwargs)
        except TrainingSessionNotFound:
            if self._training_ids.get(_ref_key(session_id)) == session_id:
                # Neither a room nor one of the caller's training sessions.
                raise RoomNotFound("No room or training session with that id.", status=404) from None
            raise

    async def training_session_id(self, session_id: str) -> str:
        """The training session a room shows; an id that names no room is taken as a training session id."""
        key = _ref_key(session_id)
        if key not in self._training_ids:
            try:
                self._remember_room(await self.api.get(room_path(session_id)))
            except RoomNotFound:
                self._training_ids[key] = session_id
        return self._training_ids[key]

    # --- Recordings and replay -----------------------------------------------------------------

    async def configure_recording(
        self,
        session_id: str,
        mode: RecordingMode | str | None = None,
        *,
        every_n: int | None = None,
        keep: int | None = None,
        max_bytes: int | None = None,
        max_age_hours: float | None = None,
    ) -> dict[str, Any]:
        """Choose what the training session records for replay, and how much of it the server keeps.

        ``mode``: ``all``, ``every_nth`` (episodes whose number is a multiple of ``every_n``),
        ``best_worst`` (the ``keep`` best and ``keep`` worst by reward) or ``off``; ``max_bytes``
        and ``max_age_hours`` bound what is kept (the oldest episodes go first). Only the settings
        given change. Returns the settings with the current ``episodes`` and ``bytes``. Raises
        ``ValidationError`` naming the field (``recording.every_n``), ``TrainingSessionNotFound``.
        """
        settings: dict[str, Any] = {
            name: value
            for name, value in (
                ("every_n", every_n),
                ("keep", keep),
                ("max_bytes", max_bytes),
                ("max_age_hours", max_age_hours),
            )
            if value is not None
        }
        if mode is not None:
            try:
                settings["mode"] = RecordingMode(mode).value
            except ValueError:
                choices = ", ".join(item.value for item in RecordingMode)
                raise ValidationError(
                    f"recording.mode: choose one of {choices}.",
                    fields={"recording.mode": [f"Choose one of {choices}."]},
                ) from None
        if not settings:
            raise ValidationError(
                "recording: name at least one setting to change.", fields={"recording": ["Name at least one setting."]}
            )
        training_id = await self.training_session_id(session_id)
        session = await self.api.patch(session_path(training_id), {"recording": settings})
        return session["recording"]

    async def list_recorded_episodes(self, session_id: str, *, ordering: str = "-episode") -> list[dict[str, Any]]:
        """The training session's recorded episodes (``episode``, ``decisions``, ``frames``, ``steps``,
        ``reward``, ``bytes``, …), newest first; ``ordering`` also takes ``episode``, ``reward``,
        ``-reward``, ``recorded``, ``-recorded``. For the owner and spectators admitted to one of its rooms.
        """
        training_id = await self.training_session_id(session_id)
        token = self.api.visitor_tokens.get(_ref_key(session_id))
        return await self.api.get_all(
            session_path(training_id, "recordings"), ordering=ordering, visitor_token=token, limit=500
        )

    async def export_recorded_episode(self, session_id: str, episode: int, *, images: bool = True) -> dict[str, Any]:
        """One recorded episode: ``recording`` (its summary), ``metrics``, ``decisions`` and ``frames``.

        Each frame has ``step``, ``timestamp``, ``mime``, ``size`` and (unless ``images=False``)
        ``image``, the image bytes. Raises ``NotFoundError`` when the episode is not recorded.
        """
        training_id = await self.training_session_id(session_id)
        token = self.api.visitor_tokens.get(_ref_key(session_id))
        data = await self.api.get(
            f"{session_path(training_id, 'recordings')}{int(episode)}.json",
            frames="base64" if images else "none",
            visitor_token=token,
        )
        for frame in data.get("frames", []):
            if "data" in frame:
                frame["image"] = base64.b64decode(frame.pop("data"))
        return data

    # --- Listening -------------------------------------------------------------------------------

    async def register_metrics_callback(self, session_id: str, callback: Callback) -> None:
        """Call ``callback`` (sync or async) with a MetricsData for every update of the session.

        Connects to the room's WebSocket (joining as the token's user for a ticket) and waits
        for its snapshot, so every update the server accepts from then on reaches the
        callback, also those sent by other processes. Reconnects when dropped and hands over
        what arrived meanwhile. Raises ``RoomNotFound``, ``AccessDenied``, ``RoomFull``,
        ``RoomExpired``, ``ServerUnavailable``.
        """
        listener = await self._listener(session_id)
        listener.metrics_callbacks.append(callback)

    async def register_message_callback(self, session_id: str, callback: Callback) -> None:
        """Call ``callback`` with every live message of the session as a dict.

        Binary frames arrive as ``{"type": "frame", ..., "image": bytes}``.
        """
        listener = await self._listener(session_id)
        listener.message_callbacks.append(callback)

    async def unregister_metrics_callback(self, session_id: str, callback: Callback) -> None:
        """Stop calling ``callback``; the connection closes when no callback is left."""
        room_id = await self._room_id(session_id)
        listener = self._listeners.get(room_id)
        if listener is None:
            return
        with_callback = [cb for cb in listener.metrics_callbacks if cb is not callback]
        listener.metrics_callbacks[:] = with_callback
        if not listener.metrics_callbacks and not listener.message_callbacks:
            await self._stop_listener(room_id)

    def listener(self, session_id: str) -> RoomListener | None:
        """The live connection of a session this manager listens to (for its ``error`` and counters)."""
        key = _ref_key(session_id)
        for room_id, listener in self._listeners.items():
            if key in (_ref_key(room_id), _ref_key(listener.room_ref)):
                return listener
        return None

    async def _listener(self, session_id: str) -> RoomListener:
        room_id = await self._room_id(session_id)
        listener = self._listeners.get(room_id)
        if listener is not None and listener.running:
            return listener
        listener = RoomListener(self.api, room_id)
        await listener.start()
        self._listeners[room_id] = listener
        self._joined.add(room_id)
        return listener

    async def _stop_listener(self, room_id: str) -> None:
        listener = self._listeners.pop(room_id, None)
        if listener is not None:
            await listener.stop()

    async def _room_id(self, session_id: str) -> str:
        room_id = self._room_ids.get(_ref_key(session_id))
        if room_id is not None:
            return room_id
        room = await self.api.get(room_path(session_id))
        self._remember_room(room)
        return str(room["room_id"])

    def _remember_room(self, room: dict[str, Any]) -> None:
        room_id = str(room["room_id"])
        for key in (room_id, room["room_code"]):
            self._training_ids[_ref_key(key)] = room["training_session_id"]
            self._room_ids[_ref_key(key)] = room_id

    # --- Shutdown ----------------------------------------------------------------------------------

    async def cleanup(self) -> None:
        """Stop every listener, leave the rooms this manager joined (best effort), close connections."""
        for room_id in list(self._listeners):
            await self._stop_listener(room_id)
        for room_id in list(self._joined):
            try:
                await room_leave(self.api, room_id)
            except Exception:  # noqa: BLE001 - leaving is a courtesy; the seat also times out
                pass
        self._joined.clear()
        await self.api.aclose()


class TrainingMetricsOverlay:
    """The metrics overlay of one spectator session: send updates and decisions, read history.

    Shares ``manager``'s connections when given one; otherwise opens its own with
    ``server_url``/``api_token`` (same defaults as ``SpectatorManager``).
    """

    def __init__(
        self,
        session_id: str,
        server_url: str | None = None,
        api_token: str | None = None,
        *,
        manager: SpectatorManager | None = None,
        game_server_url: str | None = None,
        history_size: int = 1000,
    ):
        self.session_id = session_id
        self._owns_manager = manager is None
        self.manager = manager or SpectatorManager(server_url, api_token, game_server_url=game_server_url)
        self.recent_metrics: collections.deque[MetricsData] = collections.deque(maxlen=history_size)
        self.last_decision: dict[str, Any] | None = None
        self._current: MetricsData | None = None
        self._following = False

    async def __aenter__(self) -> TrainingMetricsOverlay:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def update_metrics(self, metrics_data: MetricsData | dict) -> dict[str, Any]:
        """Send a metric update to the session (see ``SpectatorManager.update_training_metrics``)."""
        metrics = metrics_coerce(metrics_data)
        result = await self.manager.update_training_metrics(self.session_id, metrics)
        self._record(metrics)
        return result

    async def send_bot_decision_data(
        self,
        action_probabilities: Any,
        state_values: Any = None,
        q_values: Any = None,
        selected_action: Any = None,
        *,
        episode: int | None = None,
        step: int | None = None,
    ) -> dict[str, Any]:
        """Broadcast the bot's current decision to the session's spectators.

        Raises ``ValidationError`` (e.g. ``decisions.0.action_probabilities`` not summing to 1).
        """
        result = await self.manager.send_bot_decision(
            self.session_id, action_probabilities, state_values, q_values, selected_action, episode=episode, step=step
        )
        self.last_decision = decision_payload(
            action_probabilities, state_values, q_values, selected_action, episode=episode, step=step
        )
        return result

    async def get_metrics_history(self, limit: int = 1000, after_id: int = 0) -> list[MetricsData]:
        """The session's stored metric points, oldest first (from every sender, not only this one)."""
        rows = await self.manager.get_metrics_history(self.session_id, after_id=after_id, limit=limit)
        return [metrics for _id, metrics in rows]

    def get_current_metrics(self) -> MetricsData | None:
        """The latest metrics this overlay sent or, after ``follow()``, received; None before any."""
        return self._current

    async def follow(self) -> None:
        """Keep ``get_current_metrics`` and ``recent_metrics`` up to date from the live stream."""
        await self.manager.register_metrics_callback(self.session_id, self._record)
        self._following = True

    def _record(self, metrics: MetricsData) -> None:
        self._current = metrics
        self.recent_metrics.append(metrics)

    async def close(self) -> None:
        if self._following:
            self._following = False
            await self.manager.unregister_metrics_callback(self.session_id, self._record)
        if self._owns_manager:
            await self.manager.cleanup()
