"""A Stable-Baselines3 callback that streams training to a Spectator server.

    model.learn(100_000, callback=SpectatorCallback("cartpole-ppo", room=True))

Every finished episode becomes a metric point carrying the latest values the algorithm logged
(reward mean, loss, learning rate, exploration rate, fps, and its other ``train/`` values as
custom scalars). For PPO, A2C and DQN with discrete actions, the policy's view of the first
environment's state is sent as bot decisions, at most ``decision_hz`` a second: action
probabilities and the value estimate (PPO, A2C), or Q-values, the epsilon-greedy probabilities
and the best Q-value (DQN). With ``render_mode="rgb_array"`` the first environment's frames
are sent too, at most ``frame_hz`` a second.
"""

from __future__ import annotations

import collections
import logging
import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import KVWriter
from stable_baselines3.common.policies import ActorCriticPolicy

from spectator_client.integrations import RoomRequest, room_open, scalar_key, stream_open
from spectator_client.integrations.images import encode_png, frame_shrink
from spectator_client.integrations.pacing import RateLimit
from spectator_client.models import MetricsData
from spectator_client.stream import SpectatorStream

logger = logging.getLogger("spectator_client")

# Logged keys that fill a MetricsData field; the first one present wins.
LOSS_KEYS = ("train/loss", "train/value_loss", "train/critic_loss", "train/policy_loss", "train/actor_loss")
FIELD_KEYS = {
    "learning_rate": ("train/learning_rate",),
    "epsilon": ("rollout/exploration_rate",),
    "actions_per_second": ("time/fps",),
    "model_generation": ("train/n_updates",),
}
# Logged keys a field or the episode itself already shows; the other numbers become custom scalars.
NOT_EXTRA_PREFIXES = ("time/", "rollout/")
NOT_EXTRA_KEYS = {"train/loss", "train/learning_rate", "train/n_updates"}


class LoggedValues(KVWriter):
    """An output format for the algorithm's logger that keeps the latest number logged under each key."""

    def __init__(self) -> None:
        self.values: dict[str, float] = {}

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, Any], step: int = 0) -> None:
        for key, value in key_values.items():
            number = _number(value)
            if number is not None:
                self.values[key] = number

    def close(self) -> None:
        pass


class SpectatorCallback(BaseCallback):
    """Stream a Stable-Baselines3 run: episodes with the algorithm's logged values, decisions, frames.

    ``training_session_id`` names the run (generated from the algorithm and env when omitted);
    ``stream`` shares an existing ``SpectatorStream``. ``action_names`` label discrete actions
    (``["left", "right"]``). ``room=True`` opens a public room and prints its address. Other
    keyword arguments go to the ``SpectatorStream`` (``server_url``, ``api_token``…).
    """

    def __init__(
        self,
        training_session_id: str | None = None,
        *,
        stream: SpectatorStream | None = None,
        room: RoomRequest = None,
        algorithm: str | None = None,
        action_names: Sequence[str] | None = None,
        decision_hz: float = 10.0,
        frame_hz: float = 5.0,
        max_frame_side: int | None = 320,
        flush_timeout: float = 10.0,
        verbose: int = 0,
        **stream_options: Any,
    ):
        super().__init__(verbose)
        self.training_session_id = training_session_id
        self.spectator = stream
        self.room_request = room
        self.room = None
        self.algorithm = algorithm
        self.action_names = list(action_names) if action_names else None
        self.decision_limit = RateLimit(decision_hz)
        self.frame_limit = RateLimit(frame_hz)
        self.max_frame_side = max_frame_side
        self.flush_timeout = flush_timeout
        self.stream_options = stream_options
        self.logged = LoggedValues()
        self.episodes = 0
        self.best_reward: float | None = None
        self.returns: collections.deque[float] = collections.deque(maxlen=100)
        self.successes: collections.deque[float] = collections.deque(maxlen=100)
        self._owns_stream = False
        self._stream_closed = False
        self._started = time.monotonic()
        self._running_returns: np.ndarray | None = None
        self._running_lengths: np.ndarray | None = None

    # --- Hooks --------------------------------------------------------------------------------

    def _on_training_start(self) -> None:
        self.algorithm = self.algorithm or type(self.model).__name__
        if self.spectator is None or self._stream_closed:
            # Each learn() with an owned stream gets a fresh one: the last one closed when it ended.
            self.spectator, self._owns_stream = stream_open(
                None,
                self.training_session_id,
                default_name=f"{self.algorithm}-{_env_id(self.training_env)}",
                algorithm=self.algorithm,
                **self.stream_options,
            )
            self.training_session_id = self.spectator.training_session_id
            self._stream_closed = False
        if self.room is None:
            self.room = room_open(
                self.spectator, self.room_request, name=self.training_session_id, algorithm=self.algorithm
            )
        self.returns = collections.deque(self.returns, maxlen=getattr(self.model, "_stats_window_size", 100))
        if self.logged not in self.model.logger.output_formats:
            self.model.logger.output_formats.append(self.logged)
        self._started = time.monotonic()
        self.spectator.set_status("running")

    def _on_step(self) -> bool:
        self._episodes_finished()
        if self.decision_limit.ready():
            self._decision_send()
        if self.frame_limit.ready():
            self._frame_send()
        return True

    def _on_training_end(self) -> None:
        if self.logged in self.model.logger.output_formats:
            self.model.logger.output_formats.remove(self.logged)
        if self._owns_stream:
            self.spectator.close(timeout=self.flush_timeout)
            self._stream_closed = True
        else:
            self.spectator.flush(timeout=self.flush_timeout)

    # --- Episodes -----------------------------------------------------------------------------

    def _episodes_finished(self) -> None:
        """Log a point for each episode that ended this step (the Monitor wrapper's ``episode`` info)."""
        infos = self.locals.get("infos") or ()
        dones = np.asarray(self.locals.get("dones", np.zeros(len(infos), dtype=bool)))
        rewards = np.asarray(self.locals.get("rewards", np.zeros(len(infos))), dtype=float)
        if self._running_returns is None or len(self._running_returns) != len(rewards):
            self._running_returns = np.zeros(len(rewards))
            self._running_lengths = np.zeros(len(rewards), dtype=int)
        self._running_returns += rewards
        self._running_lengths += 1
        for index, info in enumerate(infos):
            if not dones[index]:
                continue
            episode = info.get("episode")
            if episode is not None:
                reward, length = float(episode["r"]), int(episode["l"])
            else:
                reward, length = float(self._running_returns[index]), int(self._running_lengths[index])
            self._running_returns[index], self._running_lengths[index] = 0.0, 0
            success = info.get("is_success")
            if success is not None:
                self.successes.append(float(success))
            self._episode_log(reward, length)

    def _episode_log(self, reward: float, length: int) -> None:
        self.episodes += 1
        self.returns.append(reward)
        self.best_reward = reward if self.best_reward is None else max(self.best_reward, reward)
        values = self.logged.values
        fields: dict[str, Any] = {name: _first(values, keys) for name, keys in FIELD_KEYS.items()}
        if fields["epsilon"] is None:
            fields["epsilon"] = _number(getattr(self.model, "exploration_rate", None))
        if fields["learning_rate"] is None:
            fields["learning_rate"] = _optimizer_learning_rate(self.model)
        if fields["model_generation"] is not None:
            fields["model_generation"] = int(fields["model_generation"])
        elapsed = time.monotonic() - self._started
        if fields["actions_per_second"] is None and elapsed > 0:
            fields["actions_per_second"] = self.num_timesteps / elapsed
        self.spectator.log_metrics(
            MetricsData(
                episode=self.episodes,
                current_reward=reward,
                average_reward=float(np.mean(self.returns)),
                best_reward=self.best_reward,
                episode_length=length,
                win_rate=float(np.mean(self.successes)) if self.successes else None,
                loss_value=_first(values, LOSS_KEYS),
                algorithm=self.algorithm or "",
                training_time_elapsed=elapsed,
                extra={
                    scalar_key(key): value
                    for key, value in values.items()
                    if key not in NOT_EXTRA_KEYS and not key.startswith(NOT_EXTRA_PREFIXES)
                },
                **fields,
            )
        )

    # --- Decisions and frames -------------------------------------------------------------------

    def _decision_send(self) -> None:
        """Send what the policy thinks of the first environment's current state (discrete actions only)."""
        if not isinstance(self.model.action_space, spaces.Discrete):
            return
        policy = self.model.policy
        observation = getattr(self.model, "_last_obs", None)
        if observation is None:
            return
        with th.no_grad():
            obs_tensor, _vectorized = policy.obs_to_tensor(_first_env(observation))
            if isinstance(policy, ActorCriticPolicy):
                probabilities = policy.get_distribution(obs_tensor).distribution.probs[0].cpu().numpy()
                state_value = float(policy.predict_values(obs_tensor)[0, 0])
                q_values = None
            elif hasattr(policy, "q_net"):
                q_values = policy.q_net(obs_tensor)[0].cpu().numpy().astype(float)
                epsilon = float(getattr(self.model, "exploration_rate", 0.0))
                probabilities = np.full(len(q_values), epsilon / len(q_values))
                probabilities[int(q_values.argmax())] += 1.0 - epsilon
                state_value = float(q_values.max())
            else:
                return
        actions = self.locals.get("actions")
        selected = int(np.asarray(actions).reshape(-1)[0]) if actions is not None else None
        self.spectator.log_decision(
            self._by_action(probabilities / probabilities.sum()),
            state_values=state_value,
            q_values=None if q_values is None else self._by_action(q_values),
            selected_action=self._action_name(selected),
            episode=self.episodes + 1,
            step=self.num_timesteps,
        )

    def _frame_send(self) -> None:
        env = self.training_env
        if getattr(env, "render_mode", None) != "rgb_array":
            return
        image = env.env_method("render", indices=[0])[0]
        if isinstance(image, np.ndarray) and image.ndim in (2, 3):
            frame = encode_png(frame_shrink(image, self.max_frame_side))
            self.spectator.log_frame(frame, "image/png", episode=self.episodes + 1, step=self.num_timesteps)

    def _by_action(self, values: np.ndarray) -> dict[str, float] | list[float]:
        values = [float(value) for value in values]
        if self.action_names and len(self.action_names) == len(values):
            return dict(zip(self.action_names, values, strict=True))
        return values

    def _action_name(self, action: int | None) -> int | str | None:
        if action is not None and self.action_names and 0 <= action < len(self.action_names):
            return self.action_names[action]
        return action


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _first(values: dict[str, float], keys: Sequence[str]) -> float | None:
    return next((values[key] for key in keys if key in values), None)


def _first_env(observation: Any) -> Any:
    if isinstance(observation, dict):
        return {key: value[:1] for key, value in observation.items()}
    return observation[:1]


def _optimizer_learning_rate(model: Any) -> float | None:
    optimizer = getattr(getattr(model, "policy", None), "optimizer", None)
    if optimizer is None or not optimizer.param_groups:
        return None
    return _number(optimizer.param_groups[0].get("lr"))


def _env_id(env: Any) -> str:
    try:
        spec = env.get_attr("spec", indices=[0])[0]
    except Exception:  # noqa: BLE001 - any env without a spec gets a plain name
        spec = None
    return getattr(spec, "id", None) or "env"
