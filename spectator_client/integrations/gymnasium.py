"""Stream any Gymnasium environment: wrap it, like ``RecordEpisodeStatistics``, and train as before.

    env = SpectatorWrapper(gym.make("CartPole-v1", render_mode="rgb_array"), "cartpole-ppo", room=True)

Every finished episode becomes a metric point (reward, running average and best, length,
win rate when the env reports ``is_success``, steps a second); with ``render_mode="rgb_array"``
frames are rendered at most ``frame_hz`` times a second, shrunk and sent as PNG. The training
code does not change, and nothing it calls waits on the network.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable
from typing import Any

import gymnasium
import numpy as np

from spectator_client.integrations import RoomRequest, room_open, stream_open
from spectator_client.integrations.images import encode_png, frame_shrink
from spectator_client.integrations.pacing import RateLimit
from spectator_client.models import MetricsData
from spectator_client.stream import SpectatorStream

logger = logging.getLogger("spectator_client")

SuccessFn = Callable[[bool, bool, dict, float], "bool | None"]


def info_success(terminated: bool, truncated: bool, info: dict, episode_return: float) -> bool | None:
    """The env's own verdict on an episode, when it gives one (``info["is_success"]``)."""
    success = info.get("is_success")
    return None if success is None else bool(success)


class SpectatorWrapper(gymnasium.Wrapper):
    """Stream a Gymnasium environment's episodes and frames to a Spectator server.

    ``training_session_id`` names the run (a generated one from the env's id when omitted);
    ``stream`` shares an existing ``SpectatorStream`` instead. ``frame_hz`` caps frames a
    second (0: none) and ``max_frame_side`` their size in pixels; ``episode_metrics=False``
    sends frames only (say, when a Stable-Baselines3 callback sends the metrics). ``success_fn``
    decides whether an episode was won, for the win rate. Other keyword arguments go to the
    ``SpectatorStream`` (``server_url``, ``api_token``, ``algorithm``, ``total_episodes``…).
    """

    def __init__(
        self,
        env: gymnasium.Env,
        training_session_id: str | None = None,
        *,
        stream: SpectatorStream | None = None,
        room: RoomRequest = None,
        algorithm: str = "",
        frame_hz: float = 10.0,
        max_frame_side: int | None = 320,
        stats_window: int = 100,
        episode_metrics: bool = True,
        success_fn: SuccessFn = info_success,
        clock: Callable[[], float] = time.monotonic,
        **stream_options: Any,
    ):
        super().__init__(env)
        spec_id = getattr(env.spec, "id", None) or type(env.unwrapped).__name__
        self.spectator, self._owns_stream = stream_open(
            stream, training_session_id, default_name=spec_id, algorithm=algorithm or None, **stream_options
        )
        self.algorithm = algorithm
        self.episode_metrics = episode_metrics
        self.success_fn = success_fn
        self.max_frame_side = max_frame_side
        self.clock = clock
        self.room = room_open(self.spectator, room, name=spec_id, algorithm=algorithm or None)
        self._frames = RateLimit(frame_hz if env.render_mode == "rgb_array" else 0, clock=clock)
        if frame_hz and env.render_mode != "rgb_array":
            logger.info(
                "SpectatorWrapper sends no frames: the env's render_mode is %r, not 'rgb_array'", env.render_mode
            )
        self.returns: collections.deque[float] = collections.deque(maxlen=stats_window)
        self.successes: collections.deque[bool] = collections.deque(maxlen=stats_window)
        self.best_return: float | None = None
        self.episode = 0
        self.frames_sent = 0
        self._started = clock()
        self._episode_started = self._started
        self._episode_frames = 0
        self._return = 0.0
        self._length = 0

    def reset(self, **kwargs: Any):
        observation, info = super().reset(**kwargs)
        self._return, self._length, self._episode_frames = 0.0, 0, 0
        self._episode_started = self.clock()
        self._frame_maybe()
        return observation, info

    def step(self, action: Any):
        observation, reward, terminated, truncated, info = super().step(action)
        self._return += float(reward)
        self._length += 1
        self._frame_maybe()
        if terminated or truncated:
            self._episode_end(bool(terminated), bool(truncated), info)
        return observation, reward, terminated, truncated, info

    def close(self) -> None:
        super().close()
        if self._owns_stream:
            self.spectator.close()

    def _frame_maybe(self) -> None:
        if not self._frames.ready():
            return
        image = self.env.render()
        if not isinstance(image, np.ndarray) or image.ndim not in (2, 3):
            return
        self.spectator.log_frame(
            encode_png(frame_shrink(image, self.max_frame_side)),
            "image/png",
            episode=self.episode + 1,
            step=self._length,
        )
        self.frames_sent += 1
        self._episode_frames += 1

    def _episode_end(self, terminated: bool, truncated: bool, info: dict) -> None:
        self.episode += 1
        self.returns.append(self._return)
        self.best_return = self._return if self.best_return is None else max(self.best_return, self._return)
        success = self.success_fn(terminated, truncated, info, self._return)
        if success is not None:
            self.successes.append(success)
        if not self.episode_metrics:
            return
        now = self.clock()
        seconds = max(now - self._episode_started, 1e-9)
        self.spectator.log_metrics(
            MetricsData(
                episode=self.episode,
                current_reward=self._return,
                average_reward=float(np.mean(self.returns)),
                best_reward=self.best_return,
                episode_length=self._length,
                win_rate=float(np.mean(self.successes)) if self.successes else None,
                algorithm=self.algorithm,
                training_time_elapsed=now - self._started,
                actions_per_second=self._length / seconds,
                frames_per_second=self._episode_frames / seconds,
            )
        )
