"""Shared pieces of the fault tests: a trainer streaming through the client package's sync
facade, spectators listening through its room listener, and the history check."""

from __future__ import annotations

import asyncio

import httpx

from spectator_client import SpectatorStream
from spectator_client.live import RoomListener
from spectator_client.transport import ApiConfig, AsyncApi


class Spectators:
    """Room listeners that record every episode their callbacks get, and let a test wait for them."""

    def __init__(self, url: str, room_code: str, count: int):
        self.listeners = [
            RoomListener(AsyncApi(ApiConfig.build(url)), room_code, display_name=f"s{i}") for i in range(count)
        ]
        self.seen: list[list[int]] = [[] for _ in self.listeners]
        self._changed = asyncio.Event()
        for index, listener in enumerate(self.listeners):
            listener.metrics_callbacks.append(lambda metrics, i=index: self._add(i, metrics.episode))

    def _add(self, index: int, episode: int) -> None:
        self.seen[index].append(episode)
        self._changed.set()

    async def start(self) -> None:
        for listener in self.listeners:
            await listener.start()

    async def stop(self) -> None:
        for listener in self.listeners:
            await listener.stop()

    async def wait_until_all_saw(self, episodes: range, timeout: float = 60.0) -> None:
        wanted = set(episodes)

        async def done():
            while not all(wanted <= set(seen) for seen in self.seen):
                self._changed.clear()
                await self._changed.wait()

        try:
            await asyncio.wait_for(done(), timeout)
        except TimeoutError:
            missing = [sorted(wanted - set(seen))[:10] for seen in self.seen]
            raise AssertionError(f"spectators still miss episodes (first ten each): {missing}") from None

    @property
    def reconnects(self) -> list[int]:
        return [listener.connects for listener in self.listeners]


def log_points(stream: SpectatorStream, episodes: range) -> None:
    for episode in episodes:
        stream.log_metrics(episode=episode, current_reward=float(episode), win_rate=0.5)


def stored_episodes(url: str, token: str, training_session_id: str) -> list[int]:
    """Every stored point's episode, in stored order, read back through the history API."""
    episodes, after = [], 0
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as api:
        while True:
            page = api.get(
                f"/api/v1/sessions/{training_session_id}/metrics/", params={"after_id": after, "limit": 1000}
            )
            page.raise_for_status()
            rows = page.json()
            if not rows:
                return episodes
            episodes.extend(row["data"]["episode"] for row in rows)
            after = rows[-1]["id"]
