"""Gymnasium: wrap the env, train as before. Frames (with ``render_mode="rgb_array"``; CartPole
draws them with pygame) and episode metrics stream on their own.

    export SPECTATOR_URL=http://127.0.0.1:8000 SPECTATOR_TOKEN=spt_…
    pip install "./spectator_client[gymnasium]" pygame
    python examples/gymnasium_wrapper.py [--episodes 20]
"""

import argparse
import importlib.util

import gymnasium as gym

from spectator_client.integrations.gymnasium import SpectatorWrapper


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=20)
    args = parser.parse_args()
    render_mode = "rgb_array" if importlib.util.find_spec("pygame") else None
    env = gym.make("CartPole-v1", render_mode=render_mode)
    env = SpectatorWrapper(env, algorithm="random", room=True)  # the one added line
    env.reset(seed=0)
    for _episode in range(args.episodes):
        done = False
        while not done:
            _obs, _reward, terminated, truncated, _info = env.step(env.action_space.sample())
            done = terminated or truncated
        env.reset()
    spectator = env.spectator
    env.close()
    stats = spectator.stats()
    print(f"Sent {stats['sent_metrics']} episodes and {stats['sent_frames']} frames; dropped {stats['dropped']}")
    if stats["sent_metrics"] != args.episodes:
        raise SystemExit(f"not every episode arrived: {stats}")


if __name__ == "__main__":
    main()
