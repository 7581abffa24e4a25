"""TensorBoard-style logging: a script that logs with ``SummaryWriter.add_scalar`` streams after
changing one import line.

    export SPECTATOR_URL=http://127.0.0.1:8000 SPECTATOR_TOKEN=spt_…
    python examples/tensorboard_writer.py
"""

import math
import random

# from torch.utils.tensorboard import SummaryWriter
from spectator_client.integrations.tensorboard import SummaryWriter


def main():
    rng = random.Random(0)
    writer = SummaryWriter("runs/bandit-example", algorithm="epsilon-greedy", room=True)
    arms = [0.2, 0.5, 0.8]
    estimates, counts = [0.0] * 3, [0] * 3
    for step in range(1, 201):
        epsilon = max(0.05, math.exp(-step / 50))
        arm = rng.randrange(3) if rng.random() < epsilon else max(range(3), key=estimates.__getitem__)
        reward = 1.0 if rng.random() < arms[arm] else 0.0
        counts[arm] += 1
        estimates[arm] += (reward - estimates[arm]) / counts[arm]
        writer.add_scalar("charts/episodic_return", reward, step)
        writer.add_scalar("charts/epsilon", epsilon, step)
        writer.add_scalars("estimates", {f"arm{i}": value for i, value in enumerate(estimates)}, step)
    writer.close()
    stats = writer.spectator.stats()
    print(f"Sent {stats['sent_metrics']} points; best arm estimate {max(estimates):.2f}")
    if stats["sent_metrics"] != 200:
        raise SystemExit(f"not every step arrived: {stats}")


if __name__ == "__main__":
    main()
