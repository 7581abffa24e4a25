"""SpectatorCallback in short real Stable-Baselines3 runs (PPO and DQN on CartPole) against a real server.

Stable-Baselines3 needs torch, which is not in requirements-dev.txt (from PyPI it would be the
multi-GB CUDA build): .ci/run installs the CPU build and stable-baselines3, and sets
SPECTATOR_REQUIRE_SB3=1 so these tests fail there instead of skipping.
"""

import os

import pytest

if os.environ.get("SPECTATOR_REQUIRE_SB3") != "1":
    pytest.importorskip(
        "stable_baselines3",
        reason="needs stable-baselines3 and torch: pip install torch==2.13.0 stable-baselines3==2.9.2 (.ci/run does)",
    )

import gymnasium as gym  # noqa: E402
from stable_baselines3 import DQN, PPO  # noqa: E402

from spectator_client.integrations.sb3 import SpectatorCallback  # noqa: E402
from tests.support.room_watch import RoomWatch  # noqa: E402

ACTIONS = ["left", "right"]


def stored_points(server, training_id):
    with server.api("alice") as api:
        response = api.get(f"sessions/{training_id}/metrics/", params={"limit": 5000})
        response.raise_for_status()
        return [row["data"] for row in response.json()]


def callback_for(server, training_id, **kwargs):
    return SpectatorCallback(
        training_id,
        server_url=server.url,
        api_token=server.tokens["alice"],
        action_names=ACTIONS,
        room=True,
        decision_hz=1000,
        **kwargs,
    )


def test_ppo_streams_logged_values_and_the_policys_probabilities_and_value(spectator_server, unique):
    training_id = unique("ppo")
    model = PPO("MlpPolicy", "CartPole-v1", n_steps=128, batch_size=64, n_epochs=2, seed=0, device="cpu")
    callback = callback_for(spectator_server, training_id)
    # The room opens when training starts; watch it from the first decision on.
    callback.init_callback(model)
    model.learn(total_timesteps=384, callback=callback)

    points = stored_points(spectator_server, training_id)
    assert len(points) == callback.episodes >= 5
    assert [p["episode"] for p in points] == list(range(1, len(points) + 1))
    assert all(p["algorithm"] == "PPO" and p["episode_length"] >= 1 for p in points)
    # Values PPO logged after its first update ride along with the later episodes.
    trained = [p for p in points if p.get("loss_value") is not None]
    assert trained, "no episode carried PPO's logged loss"
    last = trained[-1]
    assert last["learning_rate"] == pytest.approx(3e-4)
    assert last["model_generation"] >= 1 and last["actions_per_second"] > 0
    assert {"train/approx_kl", "train/entropy_loss", "train/value_loss"} <= set(last["extra"])
    stats = callback.spectator.stats()
    assert stats["sent_decisions"] >= 100 and stats["dropped"] == 0 and stats["rejected_decisions"] == 0


def test_dqn_streams_exploration_and_q_values_into_a_room(spectator_server, unique):
    training_id = unique("dqn")
    model = DQN("MlpPolicy", "CartPole-v1", learning_starts=100, train_freq=4, seed=0, device="cpu")
    callback = callback_for(spectator_server, training_id)
    model.learn(total_timesteps=1, callback=callback)  # opens the stream and the room
    with RoomWatch(spectator_server.url, callback.room.room_code) as watch:
        model.learn(total_timesteps=400, callback=callback, reset_num_timesteps=False)
        watch.wait_for_types("training_metrics", "bot_decision")

    points = stored_points(spectator_server, training_id)
    assert points and all(p["algorithm"] == "DQN" for p in points)
    epsilons = [p["epsilon"] for p in points]
    assert epsilons == sorted(epsilons, reverse=True) and epsilons[-1] < 1.0
    assert any(p.get("loss_value") is not None for p in points)
    decision = watch.of_type("bot_decision")[-1]
    assert set(decision["q_values"]) == set(ACTIONS) == set(decision["action_probabilities"])
    assert sum(decision["action_probabilities"].values()) == pytest.approx(1.0)
    assert decision["state_values"] == pytest.approx(max(decision["q_values"].values()))
    assert decision["selected_action"] in ACTIONS


def test_frames_come_from_the_first_env_when_it_renders_rgb_arrays(spectator_server, unique):
    pytest.importorskip("pygame", reason="Gymnasium renders CartPole frames with pygame")
    env = gym.make("CartPole-v1", render_mode="rgb_array")
    model = PPO("MlpPolicy", env, n_steps=64, batch_size=64, n_epochs=1, seed=0, device="cpu")
    callback = callback_for(spectator_server, unique("ppo-frames"), frame_hz=1000)
    model.learn(total_timesteps=64, callback=callback)
    stats = callback.spectator.stats()
    assert stats["sent_frames"] >= 10 and stats["rejected_frames"] == 0
