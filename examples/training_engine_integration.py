"""Training-engine integration: plug Spectator into an engine's callback hooks, like a logger.

A small engine (tabular Q-learning on a 5 x 5 grid: reach the goal, avoid the pit) calls its
callbacks at each step and episode; ``SpectatorCallback`` streams through ``SpectatorStream``,
which never blocks a training step, and opens a public room to watch it in.

    export SPECTATOR_URL=http://127.0.0.1:8000 SPECTATOR_TOKEN=spt_…
    python examples/training_engine_integration.py [--episodes 300]
"""

import argparse
import asyncio
import random
import secrets
import time

from spectator_client import MetricsData, SpectatorManager, SpectatorStream

SIZE = 5
START, GOAL, PIT = (0, 0), (4, 4), (2, 3)
ACTIONS = {"up": (-1, 0), "down": (1, 0), "left": (0, -1), "right": (0, 1)}


class GridWorld:
    def reset(self):
        self.position = START
        return self.position

    def step(self, action):
        dy, dx = ACTIONS[action]
        y = min(max(self.position[0] + dy, 0), SIZE - 1)
        x = min(max(self.position[1] + dx, 0), SIZE - 1)
        self.position = (y, x)
        if self.position == GOAL:
            return self.position, 10.0, True
        if self.position == PIT:
            return self.position, -10.0, True
        return self.position, -0.1, False


class Callback:
    """The engine's hooks; a callback overrides those it needs."""

    def on_train_start(self, engine): ...
    def on_step(self, engine, state, action, q_values): ...
    def on_episode_end(self, engine, episode, total, length, won): ...
    def on_train_end(self, engine): ...


class QLearningEngine:
    def __init__(self, callbacks=(), *, seed=0, alpha=0.5, gamma=0.95):
        self.env = GridWorld()
        self.callbacks = list(callbacks)
        self.rng = random.Random(seed)
        self.alpha, self.gamma = alpha, gamma
        self.q = {}
        self.epsilon = 1.0

    def values(self, state):
        return self.q.setdefault(state, dict.fromkeys(ACTIONS, 0.0))

    def train(self, episodes):
        for callback in self.callbacks:
            callback.on_train_start(self)
        for episode in range(1, episodes + 1):
            self.epsilon = max(0.05, 1.0 - episode / (episodes * 0.6))
            state, total, length, done = self.env.reset(), 0.0, 0, False
            while not done and length < 100:
                q_values = self.values(state)
                if self.rng.random() < self.epsilon:
                    action = self.rng.choice(list(ACTIONS))
                else:
                    action = max(q_values, key=q_values.get)
                for callback in self.callbacks:
                    callback.on_step(self, state, action, q_values)
                next_state, reward, done = self.env.step(action)
                target = reward if done else reward + self.gamma * max(self.values(next_state).values())
                q_values[action] += self.alpha * (target - q_values[action])
                state, total, length = next_state, total + reward, length + 1
            for callback in self.callbacks:
                callback.on_episode_end(self, episode, total, length, won=state == GOAL)
        for callback in self.callbacks:
            callback.on_train_end(self)


class SpectatorCallback(Callback):
    """Stream episodes and (a few a second) decisions; everything goes through the non-blocking stream."""

    def __init__(self, training_session_id, total_episodes, decisions_per_second=10.0):
        self.stream = SpectatorStream(training_session_id, algorithm="Q-learning", total_episodes=total_episodes)
        self.period = 1.0 / decisions_per_second
        self.next_decision = 0.0
        self.rewards, self.wins, self.best = [], [], None
        self.started = time.monotonic()

    def on_train_start(self, engine):
        self.stream.set_status("running", "Grid world training started")

    def on_step(self, engine, state, action, q_values):
        now = time.monotonic()
        if now < self.next_decision:
            return
        self.next_decision = now + self.period
        greedy = max(q_values, key=q_values.get)
        share = engine.epsilon / len(ACTIONS)
        probabilities = {name: share + (1 - engine.epsilon if name == greedy else 0.0) for name in ACTIONS}
        self.stream.log_decision(
            probabilities, state_values=max(q_values.values()), q_values=q_values, selected_action=action
        )

    def on_episode_end(self, engine, episode, total, length, won):
        self.rewards.append(total)
        self.wins.append(won)
        self.best = total if self.best is None else max(self.best, total)
        window = self.rewards[-20:]
        self.stream.log_metrics(
            MetricsData(
                episode=episode,
                current_reward=total,
                average_reward=sum(window) / len(window),
                best_reward=self.best,
                episode_length=length,
                win_rate=sum(self.wins[-20:]) / len(self.wins[-20:]),
                epsilon=engine.epsilon,
                learning_rate=engine.alpha,
                training_time_elapsed=time.monotonic() - self.started,
                extra={"states_known": len(engine.q)},
            )
        )

    def on_train_end(self, engine):
        self.stream.set_status("completed", "Grid world training finished")
        if not self.stream.close(timeout=30):
            raise SystemExit(f"could not deliver everything: {self.stream.stats()}")


async def room_open(training_session_id):
    async with SpectatorManager() as manager:
        session = await manager.create_spectator_session(training_session_id, name="Grid world (engine example)")
        return f"{manager.server_url}/r/{session.room_code}/"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=300)
    args = parser.parse_args()
    training_session_id = f"example-engine-{secrets.token_hex(3)}"
    print(f"Watch at {asyncio.run(room_open(training_session_id))}")
    spectator = SpectatorCallback(training_session_id, total_episodes=args.episodes)
    QLearningEngine([spectator]).train(args.episodes)
    stats = spectator.stream.stats()
    first, last = spectator.rewards[:20], spectator.rewards[-20:]
    print(f"Mean reward: first 20 episodes {sum(first) / len(first):.2f}, last 20 {sum(last) / len(last):.2f}")
    sent, decisions, dropped = stats["sent_metrics"], stats["sent_decisions"], stats["dropped"]
    print(f"Sent {sent} metric points and {decisions} decisions; dropped {dropped}")


if __name__ == "__main__":
    main()
