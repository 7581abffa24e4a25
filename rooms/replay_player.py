"""Replays on the room socket: one player per connection, and following a room's leader.

A spectator's ``{"type": "replay", ...}`` messages drive their own ``ReplayPlayer``: the state
machine (``metrics.replay``), the episode's timeline (``metrics.recording_selectors``) and a
task that plays it at the chosen speed. What it sends goes to that connection only, through
the hub's ``Connection.push_now`` (in order, never coalesced with the live stream), and is
marked ``"replay": true``: ``replay_state``, ``bot_decision`` and binary frames whose header
says ``"replay": true``. The live stream keeps flowing to everyone, this spectator included.

A room manager may lead: every change of their replay (and a heartbeat) goes to the room's
replay group, in whichever server process its spectators are; a spectator who follows gets
their own player set to the leader's episode, step, status, speed and loop, reading the same
recording. Followers are kept in step by each message, not by streaming through the group.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import OrderedDict

import orjson
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from metrics.events import bot_decision
from metrics.ingest import frame_pack
from metrics.models import RecordedEpisode
from metrics.recording_selectors import (
    Timeline,
    episode_metrics,
    recorded_episode_get,
    recorded_episode_summary,
    timeline_of,
)
from metrics.replay import ReplayCommand, ReplayError, ReplayState, ReplayStatus, replay_apply, replay_command_parse
from rooms.subscriber import GroupSubscriber, loop_singleton

logger = logging.getLogger(__name__)

LEADER_HEARTBEAT_SECONDS = 2.0
# A follower that hears nothing from its leader for this long takes them as gone.
LEADER_TIMEOUT_SECONDS = 10.0
# Past this many messages queued for the socket, the player skips frames and waits for it.
REPLAY_BACKLOG = 64
SEEN_MESSAGES = 1000


def replay_group_name(room_id) -> str:
    """The channel-layer group of a room's replay leaders and followers, built from its id only."""
    return f"replay.{str(room_id).replace('-', '')}"


def _dumps(message: dict) -> str:
    return orjson.dumps(message).decode()


class ReplayPlayer:
    """One connection's replay (see the module docstring)."""

    def __init__(
        self,
        connection,
        *,
        room_id,
        training_session_id: str,
        spectator_id: int,
        display_name: str,
        is_manager: bool,
        show_decisions: bool = True,
    ):
        self.connection = connection
        self.room_id = str(room_id)
        self.training_session_id = training_session_id
        self.spectator_id = spectator_id
        self.display_name = display_name
        self.is_manager = is_manager
        self.show_decisions = show_decisions
        self.key = secrets.token_hex(8)
        self.state = ReplayState()
        self.timeline: Timeline | None = None
        self.summary: dict | None = None
        self.metrics: dict | None = None
        self.following = False
        self.leading = False
        self.leader: dict | None = None
        self._leader_key: str | None = None
        self._leader_seen = 0.0
        self._lock = asyncio.Lock()
        self._playback: asyncio.Task | None = None
        self._heartbeat: asyncio.Task | None = None
        self._watchdog: asyncio.Task | None = None
        self._registered = False
        self._closed = False
        # Fire-and-forget tasks (a frame read, a leader message), referenced until they finish.
        self._tasks: set[asyncio.Task] = set()

    # --- commands from the spectator -------------------------------------------------------------

    async def handle(self, message: dict) -> None:
        """Apply one ``replay`` message; raises ``ReplayError`` naming the field."""
        command = replay_command_parse(message)
        await self._register()
        async with self._lock:
            if command.action == "state":
                self._send_state("state")
            elif command.action == "follow":
                await self._set_following(command.value)
            elif command.action == "lead":
                await self._set_leading(command.value)
            elif command.action == "exit":
                await self._exit()
            else:
                # Taking the controls leaves following.
                if self.following:
                    self._stop_following()
                await self._command(command)
                await self._publish()

    async def _command(self, command: ReplayCommand) -> None:
        if command.action == "select":
            await self._select(command.value)
            self._show(self.state, "select", scene=True)
            return
        before = self.state
        after = replay_apply(before, command)
        moved = after.position != before.position or command.action in ("stop", "seek")
        self._show(after, command.action, scene=moved)

    async def _select(self, episode: int) -> None:
        try:
            row = await database_sync_to_async(recorded_episode_get)(self.training_session_id, episode)
        except RecordedEpisode.DoesNotExist:
            raise ReplayError("episode", f"Episode {episode} is not recorded (or no longer kept).") from None
        timeline = await asyncio.to_thread(timeline_of, row)
        state = self.state.select(episode, tuple(timeline.steps))
        self.timeline = timeline
        self.summary = recorded_episode_summary(row)
        self.metrics = await database_sync_to_async(episode_metrics)(self.training_session_id, episode)
        self.state = state

    def _show(self, state: ReplayState, action: str, *, scene: bool) -> None:
        """Make ``state`` current: tell the spectator, show its step if it jumped, (re)start playing."""
        self._playback_cancel()
        self.state = state
        self._send_state(action)
        if scene:
            self._send_scene(state.position)
        if state.status == ReplayStatus.PLAYING:
            self._playback = asyncio.get_running_loop().create_task(self._play(), name=f"replay-{self.spectator_id}")

    async def _exit(self) -> None:
        """Back to live: stop playing, leading and following."""
        self._playback_cancel()
        if self.leading:
            await self._set_leading(False, announce=False)
        if self.following:
            self._stop_following()
        self.state = ReplayState(speed=self.state.speed, loop=self.state.loop)
        self.timeline = self.summary = self.metrics = None
        self._send_state("exit")

    # --- playing ----------------------------------------------------------------------------------

    async def _play(self) -> None:
        try:
            while self.state.status == ReplayStatus.PLAYING and not self._closed:
                delay = self.timeline.delay_after(self.state.position) / self.state.speed
                await asyncio.sleep(delay)
                while len(self.connection.fifo) > REPLAY_BACKLOG and not self.connection.closing:
                    # The spectator's socket is behind: let it drain (the replay's own pace).
                    await asyncio.sleep(0.02)
                if self.connection.closing:
                    return
                before = self.state
                self.state = before.advance()
                if self.state.status == ReplayStatus.ENDED:
                    self._send_state("ended")
                    await self._publish()
                    return
                if self.state.position < before.position:
                    self._send_state("loop")
                    self._send_scene(self.state.position)
                    await self._publish()
                else:
                    await self._send_position(self.state.position)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("replay of %s for spectator %s stopped", self.training_session_id, self.spectator_id)

    def _playback_cancel(self) -> None:
        if self._playback is not None and self._playback is not asyncio.current_task():
            self._playback.cancel()
        self._playback = None

    # --- what the spectator receives --------------------------------------------------------------

    def state_message(self, action: str) -> dict:
        return {
            "type": "replay_state",
            "replay": True,
            "action": action,
            "training_session_id": self.training_session_id,
            **self.state.to_dict(),
            "following": self.following,
            "leading": self.leading,
            "leader": self.leader,
            "recording": self.summary,
            "metrics": self.metrics,
        }

    def _send_state(self, action: str) -> None:
        self.connection.push_now(_dumps(self.state_message(action)))

    def _decision_text(self, decision: dict) -> str:
        return _dumps({**bot_decision(decision), "replay": True, "training_session_id": self.training_session_id})

    def _send_scene(self, position: int) -> None:
        """What the spectator sees at ``position`` after a jump: the latest decision and frame up to it."""
        if self.timeline is None or not self.timeline.length:
            return
        decision = self.timeline.latest_decision(position)
        if decision is not None and self.show_decisions:
            self.connection.push_now(self._decision_text(decision))
        frame = self.timeline.latest_frame(position)
        if frame is not None:
            self._frame_task(frame)

    async def _send_position(self, position: int) -> None:
        """What was recorded at ``position`` itself (playing forward)."""
        timeline = self.timeline
        if self.show_decisions:
            for decision in timeline.decisions[position]:
                self.connection.push_now(self._decision_text(decision))
        frame = timeline.frames[position]
        if frame is not None and len(self.connection.fifo) <= REPLAY_BACKLOG:
            image = await asyncio.to_thread(timeline.image, frame)
            if image is not None:
                self.connection.push_now(self._frame_bytes(frame.header, image))

    def _frame_bytes(self, header: dict, image: bytes) -> bytes:
        return frame_pack({**header, "training_session_id": self.training_session_id, "replay": True}, image)

    def _frame_task(self, frame) -> None:
        timeline = self.timeline

        async def send() -> None:
            image = await asyncio.to_thread(timeline.image, frame)
            # Only if the spectator is still looking at this recording.
            if image is not None and self.timeline is timeline and not self.connection.closing:
                self.connection.push_now(self._frame_bytes(frame.header, image))

        self._spawn(send(), name=f"replay-frame-{self.spectator_id}")

    # --- leading ----------------------------------------------------------------------------------

    async def _set_leading(self, lead: bool, *, announce: bool = True) -> None:
        if lead and not self.is_manager:
            raise ReplayError("lead", "Only the room's managers can lead a replay.")
        if lead == self.leading:
            if announce:
                self._send_state("lead")
            return
        self.leading = lead
        if lead:
            if self.following:
                self._stop_following()
            self.leader, self._leader_key = self._leader_entry(), self.key
            await self._publish()
            self._heartbeat = asyncio.get_running_loop().create_task(
                self._heartbeats(), name=f"replay-lead-{self.spectator_id}"
            )
        else:
            if self._heartbeat is not None:
                self._heartbeat.cancel()
                self._heartbeat = None
            self.leader = self._leader_key = None
            await get_coordinator().publish(self.room_id, self._leader_message(state=None))
        if announce:
            self._send_state("lead")

    def _leader_entry(self) -> dict:
        return {"spectator_id": self.spectator_id, "display_name": self.display_name}

    def _leader_message(self, *, state: dict | None) -> dict:
        return {
            "type": "replay.leader",
            "room_id": self.room_id,
            "leader_key": self.key,
            "leader": self._leader_entry(),
            "state": state,
            "sent_at": time.time(),
        }

    async def _publish(self) -> None:
        if not self.leading:
            return
        state = self.state.to_dict() if self.state.episode is not None else {"episode": None}
        await get_coordinator().publish(self.room_id, self._leader_message(state=state))

    async def _heartbeats(self) -> None:
        while self.leading and not self._closed:
            await asyncio.sleep(LEADER_HEARTBEAT_SECONDS)
            try:
                await self._publish()
            except Exception:
                logger.warning("replay leader heartbeat failed; retrying", exc_info=True)

    # --- following --------------------------------------------------------------------------------

    async def _set_following(self, follow: bool) -> None:
        if follow and self.leading:
            raise ReplayError("follow", "You are leading this room's replay; stop leading to follow.")
        if not follow:
            if self.following:
                self._stop_following()
            self._send_state("follow")
            return
        self.following = True
        self._watchdog = asyncio.get_running_loop().create_task(
            self._watch_leader(), name=f"replay-follow-{self.spectator_id}"
        )
        latest = get_coordinator().leaders.get(self.room_id)
        if latest is not None and latest.get("state") is not None and self._fresh(latest):
            await self._follow(latest, action="follow")
        else:
            self._send_state("follow")

    def _stop_following(self) -> None:
        self.following = False
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None

    def _fresh(self, message: dict) -> bool:
        return time.time() - message.get("sent_at", 0) < LEADER_TIMEOUT_SECONDS

    def leader_message(self, message: dict) -> None:
        """A leader's message for this room arrived (from any process); never blocks."""
        if message.get("leader_key") == self.key or self._closed:
            return
        self._spawn(self._leader_message_apply(message), name="replay-leader-message")

    async def _leader_message_apply(self, message: dict) -> None:
        async with self._lock:
            if self._closed:
                return
            gone = message.get("state") is None
            if self.leading:
                if not gone:
                    # Another manager took the lead.
                    self.leading = False
                    if self._heartbeat is not None:
                        self._heartbeat.cancel()
                        self._heartbeat = None
                    self._leader_heard(message)
                    self._send_state("lead_taken")
                return
            if gone:
                if message.get("leader_key") != self._leader_key:
                    return  # an earlier leader signing off
                self.leader = self._leader_key = None
                if self.following:
                    paused = self.state.pause() if self.state.episode is not None else self.state
                    self._show(paused, "leader_gone", scene=False)
                else:
                    self._send_leader(None)
                return
            changed = message.get("leader_key") != self._leader_key
            self._leader_heard(message)
            if self.following:
                try:
                    await self._follow(message, action="leader")
                except ReplayError as exc:
                    error = {"type": "error", "code": "bad_request", "message": exc.message, "field": exc.field}
                    self.connection.push_now(_dumps(error))
            elif changed:
                self._send_leader(message.get("state"))

    def _leader_heard(self, message: dict) -> None:
        self.leader = message.get("leader")
        self._leader_key = message.get("leader_key")
        self._leader_seen = asyncio.get_running_loop().time()

    def _send_leader(self, state: dict | None) -> None:
        """Tell a spectator who does not follow that the room's replay leader changed."""
        self.connection.push_now(
            _dumps({"type": "replay_leader", "replay": True, "leader": self.leader, "state": state})
        )

    async def _follow(self, message: dict, *, action: str) -> None:
        """Set this player to the leader's state (loading their episode when it differs)."""
        self._leader_heard(message)
        target = message.get("state") or {}
        episode = target.get("episode")
        if episode is None:
            self._show(ReplayState(speed=self.state.speed, loop=self.state.loop), action, scene=False)
            return
        selected = episode != self.state.episode
        if selected:
            await self._select(episode)
        state = self.state
        step = target.get("step")
        position = self.timeline.position_of(step) if isinstance(step, int) else 0
        status = ReplayStatus(target.get("status", ReplayStatus.PAUSED))
        new = ReplayState(
            episode=episode,
            steps=state.steps,
            position=position,
            status=status,
            speed=float(target.get("speed") or 1.0),
            loop=bool(target.get("loop")),
        )
        # A heartbeat while both play, one step apart at most, is a silent correction; any
        # other change is shown (the step itself only if it moved).
        drift = (
            new.status == state.status == ReplayStatus.PLAYING
            and (new.speed, new.loop) == (state.speed, state.loop)
            and abs(new.position - state.position) <= 1
            and self._playback is not None
            and not selected
        )
        if drift:
            self.state = new
            return
        self._show(new, action, scene=selected or new.position != state.position)

    async def _watch_leader(self) -> None:
        loop = asyncio.get_running_loop()
        while self.following and not self._closed:
            await asyncio.sleep(LEADER_TIMEOUT_SECONDS / 2)
            if self._leader_key is not None and loop.time() - self._leader_seen > LEADER_TIMEOUT_SECONDS:
                await self._leader_message_apply({"state": None, "leader_key": self._leader_key})

    # --- life -------------------------------------------------------------------------------------

    def _spawn(self, coroutine, *, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coroutine, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _register(self) -> None:
        if self._registered:
            return
        self._registered = True
        coordinator = get_coordinator()
        await coordinator.register(self)
        latest = coordinator.leaders.get(self.room_id)
        if latest is not None and latest.get("state") is not None and self._fresh(latest):
            self._leader_heard(latest)

    async def close(self) -> None:
        """The socket closed: stop playing, hand back the lead, leave the room's replay group."""
        if self._closed:
            return
        self._playback_cancel()
        for task in list(self._tasks):
            task.cancel()
        if self._watchdog is not None:
            self._watchdog.cancel()
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        if self.leading:
            self.leading = False
            try:
                await get_coordinator().publish(self.room_id, self._leader_message(state=None))
            except Exception:
                logger.warning("could not announce the end of a replay lead", exc_info=True)
        self._closed = True
        if self._registered:
            await get_coordinator().unregister(self)


class ReplayCoordinator(GroupSubscriber):
    """One per process and event loop: the replay group memberships of the rooms with local players."""

    channel_prefix = "replay."
    label = "replay coordinator"

    def __init__(self):
        super().__init__()
        self.players: dict[str, set[ReplayPlayer]] = {}
        # The latest leader message of each room (a new follower starts from it).
        self.leaders: dict[str, dict] = {}
        # Ids of leader messages already handed over (each arrives once more through the group).
        self._seen: OrderedDict[str, None] = OrderedDict()

    def subscribed_groups(self):
        return [replay_group_name(room_id) for room_id in self.players]

    async def register(self, player: ReplayPlayer) -> None:
        async with self._lock:
            await self.ensure_channel()
            players = self.players.setdefault(player.room_id, set())
            if not players:
                await self._layer.group_add(replay_group_name(player.room_id), self.channel)
            players.add(player)

    async def unregister(self, player: ReplayPlayer) -> None:
        async with self._lock:
            players = self.players.get(player.room_id)
            if players is None:
                return
            players.discard(player)
            if not players:
                del self.players[player.room_id]
                self.leaders.pop(player.room_id, None)
                await self._layer.group_discard(replay_group_name(player.room_id), self.channel)

    async def publish(self, room_id: str, message: dict) -> None:
        """Hand a leader message to this process's players at once, then to the other processes.

        Local players must not wait for the channel layer's round trip (with Redis, a spectator
        asking right after the owner took the lead would not see the leader yet); the copy that
        comes back through the group is recognised by its id and skipped.
        """
        message = {**message, "message_id": secrets.token_hex(8)}
        self.dispatch(message)
        layer = self._layer or get_channel_layer()
        await layer.group_send(replay_group_name(room_id), message)

    def dispatch(self, message: dict) -> None:
        message_id = message.get("message_id")
        if message_id is not None:
            if message_id in self._seen:
                return
            self._seen[message_id] = None
            if len(self._seen) > SEEN_MESSAGES:
                self._seen.popitem(last=False)
        room_id = message.get("room_id")
        if message.get("type") != "replay.leader" or room_id is None:
            return
        if message.get("state") is None:
            if self.leaders.get(room_id, {}).get("leader_key") == message.get("leader_key"):
                self.leaders.pop(room_id, None)
        else:
            self.leaders[room_id] = message
        for player in list(self.players.get(room_id, ())):
            try:
                player.leader_message(message)
            except Exception:
                logger.exception("replay coordinator: could not hand a leader message over")


_coordinators: dict[int, ReplayCoordinator] = {}


def get_coordinator() -> ReplayCoordinator:
    """The replay coordinator of the running event loop."""
    return loop_singleton(_coordinators, ReplayCoordinator)
