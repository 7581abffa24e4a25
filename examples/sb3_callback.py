"""Stable-Baselines3: pass a callback to ``learn``. Episodes with PPO's logged values (loss,
learning rate, fps…) and the policy's action probabilities and value estimates stream live.

    export SPECTATOR_URL=http://127.0.0.1:8000 SPECTATOR_TOKEN=spt_…
    pip install torch==2.13.0 stable-baselines3==2.9.2 ./spectator_client
    python examples/sb3_callback.py [--timesteps 2048]
"""

import argparse

from stable_baselines3 import PPO

from spectator_client.integrations.sb3 import SpectatorCallback


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timesteps", type=int, default=2048)
    args = parser.parse_args()
    model = PPO("MlpPolicy", "CartPole-v1", n_steps=256, batch_size=64, device="cpu", seed=0)
    callback = SpectatorCallback(action_names=["left", "right"], room=True)  # the one added line
    model.learn(total_timesteps=args.timesteps, callback=callback)
    stats = callback.spectator.stats()
    print(f"Sent {stats['sent_metrics']} episodes and {stats['sent_decisions']} decisions; dropped {stats['dropped']}")
    if not stats["sent_metrics"] or stats["pending_metrics"]:
        raise SystemExit(f"the episodes did not all arrive: {stats}")


if __name__ == "__main__":
    main()
