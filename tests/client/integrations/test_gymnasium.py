"""SpectatorWrapper around a real Gymnasium env (CartPole, rendered by pygame), streaming to a real server."""

import gymnasium as gym
import numpy as np
import pytest

from spectator_client import SpectatorStream
from spectator_client.integrations.gymnasium import SpectatorWrapper
from tests.support.room_watch import RoomWatch

pytest.importorskip("pygame", reason="Gymnasium renders CartPole's rgb_array frames with pygame (requirements-dev.txt)")


def stored_points(server, training_id):
    with server.api("alice") as api:
        response = api.get(f"sessions/{training_id}/metrics/", params={"limit": 5000})
        response.raise_for_status()
        return [row["data"] for row in response.json()]


def random_episodes(env, episodes, seed=0):
    """An ordinary training loop that knows nothing about Spectator; returns each episode's return and length."""
    rng = np.random.default_rng(seed)
    results = []
    env.reset(seed=seed)
    for _ in range(episodes):
        total, length, done = 0.0, 0, False
        while not done:
            _obs, reward, terminated, truncated, _info = env.step(int(rng.integers(2)))
            total += reward
            length += 1
            done = terminated or truncated
        results.append((total, length))
        env.reset()
    return results


def test_episodes_and_frames_reach_the_room(spectator_server, unique):
    training_id = unique("gym")
    env = SpectatorWrapper(
        gym.make("CartPole-v1", render_mode="rgb_array"),
        training_id,
        server_url=spectator_server.url,
        api_token=spectator_server.tokens["alice"],
        algorithm="random",
        room=True,
        frame_hz=1000,  # every step: the loop is fast, and the test wants frames of every episode
        max_frame_side=150,
    )
    with RoomWatch(spectator_server.url, env.room.room_code) as watch:
        results = random_episodes(env, 5)
        spectator = env.spectator
        assert spectator.flush(timeout=30)
        watch.wait_for_types("training_metrics", "frame")
        env.close()

    stats = spectator.stats()
    assert stats["sent_metrics"] == 5 and stats["dropped"] == 0 and stats["rejected_frames"] == 0
    points = stored_points(spectator_server, training_id)
    assert [p["episode"] for p in points] == [1, 2, 3, 4, 5]
    assert [(p["current_reward"], p["episode_length"]) for p in points] == results
    returns = [total for total, _length in results]
    assert points[-1]["average_reward"] == pytest.approx(np.mean(returns))
    assert points[-1]["best_reward"] == max(returns)
    assert all(p["algorithm"] == "random" and p["actions_per_second"] > 0 for p in points)
    frame = watch.of_type("frame")[0]
    # CartPole renders 600 x 400; shrunk to at most 150 on the longer side: 150 x 100.
    assert frame["image"][16:24] == (150).to_bytes(4, "big") + (100).to_bytes(4, "big")


def test_frames_are_rate_limited_and_win_rate_comes_from_is_success(spectator_server, unique):
    class Clock:
        now = 0.0

        def __call__(self):
            Clock.now += 0.01  # each call: 10 ms of a simulated clock
            return Clock.now

    class Succeeds(gym.Wrapper):
        """Reports a win when the pole stayed up until the time limit (never, for random play)."""

        def step(self, action):
            obs, reward, terminated, truncated, info = self.env.step(action)
            if terminated or truncated:
                info = {**info, "is_success": truncated}
            return obs, reward, terminated, truncated, info

    stream = SpectatorStream(unique("gym"), spectator_server.url, spectator_server.tokens["alice"])
    env = SpectatorWrapper(
        Succeeds(gym.make("CartPole-v1", render_mode="rgb_array")), stream=stream, frame_hz=5, clock=Clock()
    )
    random_episodes(env, 3)
    env.close()
    # The stream was the caller's: still open, and a frame at most every 0.2 simulated seconds.
    assert stream.flush(timeout=30)
    stats = stream.stats()
    steps = sum(point["episode_length"] for point in stored_points(spectator_server, stream.training_session_id))
    assert 1 <= stats["sent_frames"] <= steps // 10 + 2
    assert [p["win_rate"] for p in stored_points(spectator_server, stream.training_session_id)] == [0.0, 0.0, 0.0]
    stream.close()


def test_an_env_without_rgb_array_frames_still_streams_episodes(spectator_server, unique):
    stream = SpectatorStream(unique("gym"), spectator_server.url, spectator_server.tokens["alice"])
    env = SpectatorWrapper(gym.make("CartPole-v1"), stream=stream)
    random_episodes(env, 2)
    assert stream.flush(timeout=30)
    assert stream.stats()["sent_metrics"] == 2 and stream.stats()["sent_frames"] == 0
    assert [p.get("win_rate") for p in stored_points(spectator_server, stream.training_session_id)] == [None, None]
    stream.close()
