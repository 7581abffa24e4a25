"""The demo's training loop: CartPole-v1, the Q-learning agent, and what it streams.

Paced to CartPole's own clock (50 steps a second: 0.02 s a step) so people can watch; a
metric point every episode, the agent's decision at most ``decision_hz`` times a second and
a frame at most ``frame_hz`` times a second. Without a ``spectator`` and with
``steps_per_second=0`` it trains flat out and streams nothing (the tests do that).
"""

from __future__ import annotations

import collections
import resource
import threading
import time
from dataclasses import dataclass, field

import gymnasium
import numpy as np

from spectator_client import MetricsData, SpectatorStream
from spectator_client.integrations.images import encode_png
from spectator_client.integrations.pacing import RateLimit
from spectator_demo.agent import ACTIONS, QLearningAgent
from spectator_demo.render import CartPoleRenderer

ENV_ID = "CartPole-v1"
# Episodes in the running average and the win rate (a win: balanced for all 500 steps).
WINDOW = 20


@dataclass
class TrainerConfig:
    seed: int | None = None
    steps_per_second: float = 50.0
    decision_hz: float = 15.0
    frame_hz: float = 10.0
    # A new generation (the agent forgets and learns again) after this many steps; 0: never.
    generation_steps: int = 45_000
    first_episode: int = 1


@dataclass
class TrainerResult:
    rewards: list[float] = field(default_factory=list)
    steps: int = 0
    generations: int = 1


def train(
    config: TrainerConfig,
    *,
    spectator: SpectatorStream | None = None,
    max_steps: int | None = None,
    max_episodes: int | None = None,
    stop: threading.Event | None = None,
) -> TrainerResult:
    """Train until ``stop`` is set or a step or episode budget runs out; return the episode rewards."""
    stop = stop or threading.Event()
    env = gymnasium.make(ENV_ID)
    agent = QLearningAgent(seed=config.seed)
    renderer = CartPoleRenderer() if spectator is not None else None
    decisions = RateLimit(config.decision_hz if spectator is not None else 0)
    frames = RateLimit(config.frame_hz if spectator is not None else 0)
    result = TrainerResult()
    recent: collections.deque[float] = collections.deque(maxlen=WINDOW)
    balanced: collections.deque[bool] = collections.deque(maxlen=WINDOW)
    best = None
    generation_steps = 0
    started = time.monotonic()
    next_step_at = started
    episode = config.first_episode
    observation, _info = env.reset(seed=config.seed)
    try:
        while not stop.is_set():
            if max_episodes is not None and len(result.rewards) >= max_episodes:
                break
            if max_steps is not None and result.steps >= max_steps:
                break
            if config.generation_steps and generation_steps >= config.generation_steps:
                agent.reset()
                result.generations += 1
                generation_steps, best = 0, None
                recent.clear()
                balanced.clear()
            episode_started, episode_frames = time.monotonic(), 0
            total, length, squared_errors = 0.0, 0, 0.0
            state = agent.state(observation)
            done = False
            while not done and not stop.is_set():
                decision = agent.decide(state)
                if decisions.ready():
                    spectator.log_decision(
                        dict(zip(ACTIONS, decision.probabilities.tolist(), strict=True)),
                        state_values=decision.state_value,
                        q_values=dict(zip(ACTIONS, decision.q_values.tolist(), strict=True)),
                        selected_action=ACTIONS[decision.action],
                        episode=episode,
                        step=length,
                    )
                if frames.ready():
                    image = renderer.render(env.unwrapped.state, action=decision.action)
                    spectator.log_frame(encode_png(image), "image/png", episode=episode, step=length)
                    episode_frames += 1
                observation, reward, terminated, truncated, _info = env.step(decision.action)
                next_state = agent.state(observation)
                error = agent.learn(state, decision.action, float(reward), next_state, bool(terminated))
                squared_errors += error * error
                state = next_state
                total += float(reward)
                length += 1
                done = terminated or truncated
                if config.steps_per_second > 0:
                    next_step_at = max(next_step_at + 1.0 / config.steps_per_second, time.monotonic() - 0.1)
                    stop.wait(max(0.0, next_step_at - time.monotonic()))
            if not done:
                break
            agent.episode_end()
            result.rewards.append(total)
            result.steps += length
            generation_steps += length
            recent.append(total)
            balanced.append(bool(truncated))
            best = total if best is None else max(best, total)
            if spectator is not None:
                seconds = max(time.monotonic() - episode_started, 1e-9)
                spectator.log_metrics(
                    MetricsData(
                        episode=episode,
                        current_reward=total,
                        average_reward=float(np.mean(recent)),
                        best_reward=best,
                        episode_length=length,
                        win_rate=float(np.mean(balanced)),
                        loss_value=squared_errors / length,
                        learning_rate=agent.learning_rate,
                        epsilon=agent.epsilon,
                        model_generation=result.generations,
                        algorithm=agent.algorithm,
                        training_time_elapsed=time.monotonic() - started,
                        actions_per_second=length / seconds,
                        frames_per_second=episode_frames / seconds,
                        memory_usage_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                        extra={"states_visited": agent.states_visited},
                    )
                )
            episode += 1
            observation, _info = env.reset()
    finally:
        env.close()
    return result
