"""The replay state machine: pure, no I/O, no clock.

A replay shows one recorded episode step by step. ``steps`` are the episode's recorded step
numbers in order; ``position`` indexes them. States:

- ``stopped``: at the first step, not playing (also before any episode is selected);
- ``playing``: a player advances one position per recorded step interval (``advance``);
- ``paused``: holding at ``position``;
- ``ended``: played through the last step without looping (``play`` starts over).

Commands (each returns a new state or raises ``ReplayError`` naming the field):

=============  ============  ============  ============  ============
command        stopped       playing       paused        ended
=============  ============  ============  ============  ============
select(e)      stopped @0    stopped @0    stopped @0    stopped @0
play           playing @0    (same)        playing @p    playing @0
pause          (same)        paused @p     (same)        (same)
stop           stopped @0    stopped @0    stopped @0    stopped @0
seek(s)        paused @s     playing @s    paused @s     paused @s
step(±n)       paused @p±n   paused @p±n   paused @p±n   paused @p±n
speed(x)       (same, x)     (same, x)     (same, x)     (same, x)
loop(b)        (same, b)     (same, b)     (same, b)     (same, b)
advance        (same)        playing @p+1  (same)        (same)
=============  ============  ============  ============  ============

Bounds: ``step`` stops at the first and the last position; ``seek`` takes a step number
between the first and last recorded steps (a step between two recorded ones shows the
earlier); ``advance`` from the last position ends, or with ``loop`` goes back to the first.
play, pause, seek and step need a selected episode.
"""

from __future__ import annotations

import enum
import math
from bisect import bisect_right
from dataclasses import dataclass, replace

MIN_SPEED = 0.1
MAX_SPEED = 10.0
MAX_STEP_DELTA = 100_000


class ReplayStatus(enum.StrEnum):
    STOPPED = "stopped"
    PLAYING = "playing"
    PAUSED = "paused"
    ENDED = "ended"


class ReplayError(ValueError):
    """A command that cannot apply; ``field`` names the offending part of it."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


@dataclass(frozen=True)
class ReplayState:
    episode: int | None = None
    steps: tuple[int, ...] = ()
    position: int = 0
    status: ReplayStatus = ReplayStatus.STOPPED
    speed: float = 1.0
    loop: bool = False

    # --- reading ------------------------------------------------------------------------------

    @property
    def length(self) -> int:
        return len(self.steps)

    @property
    def step(self) -> int | None:
        return self.steps[self.position] if self.steps else None

    @property
    def at_end(self) -> bool:
        return bool(self.steps) and self.position == len(self.steps) - 1

    def to_dict(self) -> dict:
        return {
            "episode": self.episode,
            "status": self.status.value,
            "position": self.position,
            "step": self.step,
            "length": self.length,
            "first_step": self.steps[0] if self.steps else None,
            "last_step": self.steps[-1] if self.steps else None,
            "speed": self.speed,
            "loop": self.loop,
        }

    # --- commands -----------------------------------------------------------------------------

    def select(self, episode: int, steps: tuple[int, ...]) -> ReplayState:
        """Show ``episode`` (its recorded step numbers, ascending), stopped at its first step."""
        if isinstance(episode, bool) or not isinstance(episode, int):
            raise ReplayError("episode", "Must be an integer episode number.")
        if not steps:
            raise ReplayError("episode", f"Episode {episode} has no recorded steps.")
        return replace(self, episode=episode, steps=tuple(steps), position=0, status=ReplayStatus.STOPPED)

    def play(self) -> ReplayState:
        self._need_episode()
        if self.status == ReplayStatus.PLAYING:
            return self
        position = self.position if self.status == ReplayStatus.PAUSED else 0
        return replace(self, position=position, status=ReplayStatus.PLAYING)

    def pause(self) -> ReplayState:
        self._need_episode()
        if self.status != ReplayStatus.PLAYING:
            return self
        return replace(self, status=ReplayStatus.PAUSED)

    def stop(self) -> ReplayState:
        return replace(self, position=0, status=ReplayStatus.STOPPED)

    def seek(self, step: int) -> ReplayState:
        """Go to the recorded step ``step`` (or the last one before it); playing keeps playing."""
        self._need_episode()
        if isinstance(step, bool) or not isinstance(step, int):
            raise ReplayError("step", "Must be an integer step number.")
        first, last = self.steps[0], self.steps[-1]
        if not first <= step <= last:
            raise ReplayError("step", f"Episode {self.episode} has steps {first} to {last}.")
        position = bisect_right(self.steps, step) - 1
        status = ReplayStatus.PLAYING if self.status == ReplayStatus.PLAYING else ReplayStatus.PAUSED
        return replace(self, position=position, status=status)

    def step_by(self, delta: int) -> ReplayState:
        """Move ``delta`` recorded steps (negative: back), stopping at either end; pauses."""
        self._need_episode()
        if isinstance(delta, bool) or not isinstance(delta, int) or delta == 0 or abs(delta) > MAX_STEP_DELTA:
            raise ReplayError("delta", f"Must be a non-zero integer of at most {MAX_STEP_DELTA:,} either way.")
        position = min(max(self.position + delta, 0), len(self.steps) - 1)
        return replace(self, position=position, status=ReplayStatus.PAUSED)

    def with_speed(self, speed: float) -> ReplayState:
        if (
            isinstance(speed, bool)
            or not isinstance(speed, (int, float))
            or not math.isfinite(speed)
            or not MIN_SPEED <= speed <= MAX_SPEED
        ):
            raise ReplayError("speed", f"Must be a number from {MIN_SPEED} to {MAX_SPEED:g} (1 = recorded pace).")
        return replace(self, speed=float(speed))

    def with_loop(self, loop: bool) -> ReplayState:
        if not isinstance(loop, bool):
            raise ReplayError("loop", "Must be true or false.")
        return replace(self, loop=loop)

    def advance(self) -> ReplayState:
        """One recorded step further while playing: at the last step, end (or start over with loop)."""
        if self.status != ReplayStatus.PLAYING:
            return self
        if not self.at_end:
            return replace(self, position=self.position + 1)
        if self.loop:
            return replace(self, position=0)
        return replace(self, status=ReplayStatus.ENDED)

    def _need_episode(self) -> None:
        if self.episode is None:
            raise ReplayError("episode", "Select a recorded episode first.")


# --- The protocol: spectator messages to commands -------------------------------------------

ACTIONS = (
    "select",
    "play",
    "pause",
    "stop",
    "seek",
    "step",
    "step_forward",
    "step_back",
    "speed",
    "loop",
    "state",
    "exit",
    "lead",
    "follow",
)


@dataclass(frozen=True)
class ReplayCommand:
    action: str
    value: object = None


def replay_command_parse(message: dict) -> ReplayCommand:
    """Check a ``{"type": "replay", "action": ...}`` message's shape; the state machine checks ranges.

    Raises ``ReplayError`` naming the field (``action``, ``episode``, ``step``, ``delta``,
    ``speed``, ``loop``, ``lead``, ``follow``).
    """
    action = message.get("action")
    if action not in ACTIONS:
        raise ReplayError("action", f"Choose one of: {', '.join(ACTIONS)}.")
    if action == "select":
        episode = message.get("episode")
        if isinstance(episode, bool) or not isinstance(episode, int):
            raise ReplayError("episode", "select needs an integer episode.")
        return ReplayCommand(action, episode)
    if action == "seek":
        step = message.get("step")
        if isinstance(step, bool) or not isinstance(step, int):
            raise ReplayError("step", "seek needs an integer step.")
        return ReplayCommand(action, step)
    if action in ("step", "step_forward", "step_back"):
        delta = message.get("delta", -1 if action == "step_back" else 1)
        if isinstance(delta, bool) or not isinstance(delta, int):
            raise ReplayError("delta", "Must be an integer.")
        if action == "step_back":
            delta = -abs(delta)
        elif action == "step_forward":
            delta = abs(delta)
        return ReplayCommand("step", delta)
    if action == "speed":
        return ReplayCommand(action, message.get("speed"))
    if action in ("loop", "lead", "follow"):
        value = message.get(action, True)
        if not isinstance(value, bool):
            raise ReplayError(action, "Must be true or false.")
        return ReplayCommand(action, value)
    return ReplayCommand(action)


def replay_apply(state: ReplayState, command: ReplayCommand) -> ReplayState:
    """Apply a parsed command that needs no I/O (everything but select, state, exit, lead, follow)."""
    if command.action == "play":
        return state.play()
    if command.action == "pause":
        return state.pause()
    if command.action == "stop":
        return state.stop()
    if command.action == "seek":
        return state.seek(command.value)
    if command.action == "step":
        return state.step_by(command.value)
    if command.action == "speed":
        return state.with_speed(command.value)
    if command.action == "loop":
        return state.with_loop(command.value)
    raise ReplayError("action", f"{command.action} is not a state machine command.")
