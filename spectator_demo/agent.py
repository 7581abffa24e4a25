"""Tabular Q-learning for CartPole: the pole's angle and angular velocity, 6 x 12 bins.

Cart position and velocity are left out on purpose: they barely matter for keeping the pole
up within 500 steps, and a small table learns fast enough to watch (mean reward ~23 over the
first 20 episodes, ~165 over the last 20 of 6,000 steps, two minutes in real time; see tests/demo).
Exploration and step size fall with the episode count (1 - log10((episode + 1) / 15)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from spectator_demo import ALGORITHM

ACTIONS = ("left", "right")
# Lower bounds of cart position, cart velocity, pole angle, pole angular velocity; uppers are the negatives.
STATE_LOWS = np.array([-2.4, -3.0, -0.21, -math.radians(50)])


@dataclass(frozen=True)
class Decision:
    action: int
    probabilities: np.ndarray
    q_values: np.ndarray
    state_value: float


class QLearningAgent:
    """An epsilon-greedy tabular Q-learner over a coarse grid of CartPole's state."""

    algorithm = ALGORITHM

    def __init__(
        self,
        *,
        seed: int | None = None,
        bins: tuple[int, int, int, int] = (1, 1, 6, 12),
        gamma: float = 0.99,
        min_epsilon: float = 0.02,
        min_learning_rate: float = 0.1,
        decay_episodes: float = 15.0,
    ):
        self.bins = np.array(bins)
        self.gamma = gamma
        self.min_epsilon = min_epsilon
        self.min_learning_rate = min_learning_rate
        self.decay_episodes = decay_episodes
        self.rng = np.random.default_rng(seed)
        self.reset()

    def reset(self) -> None:
        """Forget everything: a new generation starts learning from scratch."""
        self.q = np.zeros((*self.bins, len(ACTIONS)))
        self.visits = np.zeros(self.q.shape[:-1], dtype=bool)
        self.episodes = 0

    @property
    def schedule(self) -> float:
        return min(1.0, 1.0 - math.log10((self.episodes + 1) / self.decay_episodes))

    @property
    def epsilon(self) -> float:
        return max(self.min_epsilon, self.schedule)

    @property
    def learning_rate(self) -> float:
        return max(self.min_learning_rate, self.schedule)

    @property
    def states_visited(self) -> float:
        """The share of the table's states seen so far."""
        return float(self.visits.mean())

    def state(self, observation: np.ndarray) -> tuple[int, ...]:
        scaled = (np.clip(observation, STATE_LOWS, -STATE_LOWS) - STATE_LOWS) / (-2 * STATE_LOWS)
        return tuple(np.minimum((scaled * self.bins).astype(int), self.bins - 1))

    def decide(self, state: tuple[int, ...]) -> Decision:
        """Pick an action epsilon-greedily; also report the policy's probabilities and values."""
        q_values = self.q[state]
        epsilon = self.epsilon
        probabilities = np.full(len(ACTIONS), epsilon / len(ACTIONS))
        probabilities[int(q_values.argmax())] += 1.0 - epsilon
        action = int(self.rng.choice(len(ACTIONS), p=probabilities))
        return Decision(action, probabilities, q_values.copy(), float(probabilities @ q_values))

    def learn(self, state, action: int, reward: float, next_state, terminated: bool) -> float:
        """One Q-learning update; returns the TD error."""
        self.visits[state] = True
        target = reward if terminated else reward + self.gamma * self.q[next_state].max()
        error = target - self.q[(*state, action)]
        self.q[(*state, action)] += self.learning_rate * error
        return float(error)

    def episode_end(self) -> None:
        self.episodes += 1
