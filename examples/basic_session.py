"""Basic session: create a spectator session for a training run, let a spectator join, stream metrics.

export SPECTATOR_URL=http://127.0.0.1:8000 SPECTATOR_TOKEN=spt_…   # manage.py create_api_token alice
python examples/basic_session.py
"""

import asyncio
import secrets

from spectator_client import MetricsData, SpectatorManager, SpectatorMode


async def main() -> None:
    training_session_id = f"example-basic-{secrets.token_hex(3)}"
    async with SpectatorManager() as manager:
        session = await manager.create_spectator_session(
            training_session_id,
            spectator_mode=SpectatorMode.LIVE_TRAINING,
            max_spectators=10,
            session_duration_hours=1,
            name="Basic session example",
        )
        print(f"Created room {session.room_code} for {session.training_session_id}")
        print(f"Watch it at {manager.server_url}/r/{session.room_code}/")

        # A spectator joins with the room code (anonymously here: no token).
        async with SpectatorManager(api_token="") as spectator:
            joined = await spectator.join_spectator_session(session.room_code, spectator_name="Ada")
            print(f"Ada joins: {joined['status']}")
            info = await manager.get_session_info(session.session_id)
            print(f"Spectators now: {info['current_spectators']}")

            best = None
            for episode in range(1, 11):
                reward = 10.0 + episode * 3.5
                best = reward if best is None else max(best, reward)
                await manager.update_training_metrics(
                    session.session_id,
                    MetricsData(
                        episode=episode,
                        total_episodes=10,
                        current_reward=reward,
                        best_reward=best,
                        episode_length=int(reward),
                        epsilon=max(0.05, 1.0 - episode / 10),
                        algorithm="DQN",
                    ),
                )
            print("Streamed 10 episodes of metrics")
            await spectator.leave_spectator_session(session.room_code)

        active = [s["room_code"] for s in await manager.list_active_sessions()]
        assert session.room_code in active
        await manager.close_session(session.session_id)
        print(f"Closed room {session.room_code}")


if __name__ == "__main__":
    asyncio.run(main())
