"""Metrics overlay with decisions: a trainer sends metrics and the bot's decisions; a spectator's
callbacks receive them live.

    export SPECTATOR_URL=http://127.0.0.1:8000 SPECTATOR_TOKEN=spt_…
    python examples/metrics_overlay.py
"""

import asyncio
import math
import secrets

from spectator_client import MetricsData, SpectatorManager, TrainingMetricsOverlay

EPISODES = 5


async def main() -> None:
    async with SpectatorManager() as trainer:
        session = await trainer.create_spectator_session(f"example-overlay-{secrets.token_hex(3)}")
        overlay = TrainingMetricsOverlay(session.session_id, manager=trainer)
        async with SpectatorManager() as watcher:
            await stream_and_watch(overlay, watcher, session.session_id)
        history = await overlay.get_metrics_history()
        print(f"Stored history: {[m.episode for m in history]}; current: {overlay.get_current_metrics().episode}")
        await trainer.close_session(session.session_id)


async def stream_and_watch(overlay: TrainingMetricsOverlay, watcher: SpectatorManager, session_id: str) -> None:
    """Send EPISODES updates and decisions through the overlay; wait until the watcher has seen them all."""

    received: list[MetricsData] = []
    decisions: list[dict] = []
    all_arrived = asyncio.Event()

    def on_metrics(metrics: MetricsData) -> None:
        received.append(metrics)
        print(f"  spectator sees episode {metrics.episode}: reward {metrics.current_reward:.1f}")

    def on_message(message: dict) -> None:
        if message.get("type") == "bot_decision":
            decisions.append(message)
        if len(received) >= EPISODES and len(decisions) >= EPISODES:
            all_arrived.set()

    await watcher.register_metrics_callback(session_id, on_metrics)
    await watcher.register_message_callback(session_id, on_message)

    for episode in range(1, EPISODES + 1):
        right = 1 / (1 + math.exp(-episode / 2))  # the bot grows surer that "right" is right
        await overlay.send_bot_decision_data(
            {"left": 1 - right, "right": right},
            state_values=episode * 2.0,
            q_values=[episode * 1.5, episode * 2.0],
            selected_action="right",
            episode=episode,
        )
        await overlay.update_metrics(
            MetricsData(
                episode=episode,
                current_reward=episode * 12.5,
                average_reward=episode * 10.0,
                loss_value=1.0 / episode,
                extra={"td_error": 0.5 / episode},
            )
        )
    await asyncio.wait_for(all_arrived.wait(), timeout=30)
    print(f"Spectator got {len(received)} metric updates and {len(decisions)} decisions")
    print(f"Last decision: {decisions[-1]['action_probabilities']} -> {decisions[-1]['selected_action']}")


if __name__ == "__main__":
    asyncio.run(main())
