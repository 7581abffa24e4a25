"""The demo's agent really learns, at the pace the demo plays."""

import time

import numpy as np
import pytest

from spectator_demo.agent import QLearningAgent
from spectator_demo.trainer import TrainerConfig, train

# Two minutes of play at CartPole's own clock (50 steps a second), the demo's default pace.
TWO_MINUTES_OF_STEPS = 6000


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_agent_improves_within_two_minutes_of_play(seed):
    rewards = train(TrainerConfig(seed=seed, steps_per_second=0), max_steps=TWO_MINUTES_OF_STEPS).rewards
    first, last = np.mean(rewards[:20]), np.mean(rewards[-20:])
    # Measured over seeds 0-9: ~23 for the first 20 episodes, ~165 (at least ~110) for the last 20.
    assert first < 40
    assert last > 3 * first and last > 80


def test_training_is_reproducible_with_a_seed():
    once = train(TrainerConfig(seed=5, steps_per_second=0), max_episodes=30).rewards
    again = train(TrainerConfig(seed=5, steps_per_second=0), max_episodes=30).rewards
    assert once == again and len(once) == 30


def test_a_new_generation_forgets_and_learns_again():
    result = train(TrainerConfig(seed=0, steps_per_second=0, generation_steps=3000), max_steps=6500)
    assert result.generations == 3
    fresh = QLearningAgent(seed=0)
    assert fresh.epsilon == 1.0 and not fresh.q.any()


def test_the_demo_plays_in_real_time_not_flat_out():
    started = time.monotonic()
    result = train(TrainerConfig(seed=0, steps_per_second=100), max_steps=50)
    assert result.steps >= 50
    assert time.monotonic() - started >= 0.45


def test_decisions_are_a_probability_distribution_with_values():
    agent = QLearningAgent(seed=0)
    state = agent.state(np.array([0.0, 0.0, 0.05, 0.3]))
    agent.learn(state, 1, 1.0, state, terminated=True)
    decision = agent.decide(state)
    assert decision.probabilities.sum() == pytest.approx(1.0)
    # Still exploring fully (epsilon 1): both actions equally likely; the learned value shows in Q.
    assert decision.probabilities.tolist() == [0.5, 0.5]
    assert decision.q_values[1] > decision.q_values[0] == 0
    assert decision.state_value == pytest.approx(decision.probabilities @ decision.q_values)
