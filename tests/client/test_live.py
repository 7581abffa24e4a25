"""register_metrics_callback over the real room WebSocket (daphne on a loopback port)."""

import asyncio
import sys

import pytest

import spectator_client as sc
from spectator_client import MetricsData, SpectatorManager, SpectatorRoomManager
from tests.client.support import run
from tests.support.servers import ROOT

pytestmark = pytest.mark.websocket

OTHER_PROCESS = """
import sys
from spectator_client import SpectatorStream
with SpectatorStream(sys.argv[1], sys.argv[2], sys.argv[3]) as stream:
    for episode in range(100, 103):
        stream.log_metrics(episode=episode, current_reward=float(episode))
    assert stream.flush(timeout=20)
"""


class Collector:
    """Collects what a callback receives and lets a test wait (bounded) for a count."""

    def __init__(self):
        self.items: list = []
        self.changed = asyncio.Event()

    def add(self, item):
        self.items.append(item)
        self.changed.set()

    async def wait_for_count(self, count: int, timeout: float = 15.0):
        async def reached():
            while len(self.items) < count:
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(reached(), timeout)
        return self.items


def test_callbacks_get_every_update_also_from_other_clients_and_processes(spectator_server, unique):
    training_id = unique()
    url, token = spectator_server.url, spectator_server.tokens["alice"]

    async def scenario():
        async with SpectatorManager(url, token) as watcher, SpectatorManager(url, token) as trainer:
            session = await trainer.create_spectator_session(training_id)
            # Points sent before registering are history, not updates.
            await trainer.update_training_metrics(session.session_id, MetricsData(episode=0))
            sync_seen, async_seen = Collector(), Collector()

            async def async_callback(metrics):
                await asyncio.sleep(0)
                async_seen.add(metrics)

            await watcher.register_metrics_callback(session.session_id, sync_seen.add)
            await watcher.register_metrics_callback(session.room_code, async_callback)
            for episode in range(1, 6):
                await trainer.update_training_metrics(
                    session.session_id, MetricsData(episode=episode, current_reward=episode * 1.5, extra={"kl": 0.1})
                )
            other = await asyncio.create_subprocess_exec(
                sys.executable, "-c", OTHER_PROCESS, training_id, url, token, cwd=ROOT
            )
            assert await asyncio.wait_for(other.wait(), 30) == 0
            got_sync = await sync_seen.wait_for_count(8)
            got_async = await async_seen.wait_for_count(8)
            listener = watcher.listener(session.session_id)
            return got_sync, got_async, listener

    got_sync, got_async, listener = run(scenario())
    assert all(isinstance(m, MetricsData) for m in got_sync)
    assert sorted(m.episode for m in got_sync) == [1, 2, 3, 4, 5, 100, 101, 102]
    assert sorted(m.episode for m in got_async) == [1, 2, 3, 4, 5, 100, 101, 102]
    first = next(m for m in got_sync if m.episode == 1)
    assert first.current_reward == 1.5 and first.extra == {"kl": 0.1}
    assert listener.connects == 1 and listener.error is None


def test_a_spectator_listens_and_the_kick_ends_the_stream(spectator_server, unique):
    training_id = unique()
    url = spectator_server.url

    async def scenario():
        async with (
            SpectatorManager(url, spectator_server.tokens["alice"]) as owner,
            SpectatorManager(url, spectator_server.tokens["bob"]) as bob,
            SpectatorRoomManager(url, spectator_server.tokens["alice"]) as rooms,
        ):
            session = await owner.create_spectator_session(training_id)
            seen = Collector()
            await bob.register_metrics_callback(session.session_id, seen.add)
            await owner.update_training_metrics(session.session_id, {"episode": 7})
            await seen.wait_for_count(1)
            listener = bob.listener(session.session_id)
            spectators = await rooms.list_spectators(session.room_code)
            bob_seat = next(s for s in spectators if s["username"] == "bob")
            await rooms.kick_spectator(session.room_code, bob_seat["spectator_id"])
            await asyncio.wait_for(listener._task, 10)
            return seen.items, listener

    items, listener = run(scenario())
    assert [m.episode for m in items] == [7]
    assert isinstance(listener.error, sc.AccessDenied) and listener.error.status == 4403


def test_closing_the_room_ends_the_stream_with_room_closed(spectator_server, unique):
    training_id = unique()
    url, token = spectator_server.url, spectator_server.tokens["alice"]

    async def scenario():
        async with SpectatorManager(url, token) as owner, SpectatorManager(url, token) as watcher:
            session = await owner.create_spectator_session(training_id)
            await watcher.register_metrics_callback(session.session_id, lambda metrics: None)
            listener = watcher.listener(session.session_id)
            await owner.close_session(session.session_id)
            await asyncio.wait_for(listener._task, 10)
            with pytest.raises(sc.RoomClosed):
                await watcher.register_metrics_callback(session.session_id, lambda metrics: None)
            return listener

    listener = run(scenario())
    assert isinstance(listener.error, sc.RoomClosed) and listener.error.status == 4410


def test_registering_for_a_room_you_may_not_see_fails_at_once(spectator_server, unique):
    training_id = unique()
    url = spectator_server.url

    async def scenario():
        async with (
            SpectatorRoomManager(url, spectator_server.tokens["alice"]) as rooms,
            SpectatorManager(url, spectator_server.tokens["dave"]) as dave,
        ):
            private = await rooms.create_spectator_room(
                training_id, access_control=sc.RoomAccessControl(sc.AccessLevel.PRIVATE)
            )
            with pytest.raises(sc.RoomNotFound):
                await dave.register_metrics_callback(private.room_code, lambda metrics: None)
            assert dave.listener(private.room_code) is None

    run(scenario())


def test_overlay_follow_keeps_current_metrics(spectator_server, unique):
    training_id = unique()
    url, token = spectator_server.url, spectator_server.tokens["alice"]

    async def scenario():
        async with SpectatorManager(url, token) as trainer:
            session = await trainer.create_spectator_session(training_id)
            async with sc.TrainingMetricsOverlay(session.room_code, url, token) as overlay:
                await overlay.follow()
                seen = Collector()
                await overlay.manager.register_metrics_callback(session.room_code, seen.add)
                await trainer.update_training_metrics(session.session_id, {"episode": 42, "win_rate": 0.25})
                await seen.wait_for_count(1)
                return overlay.get_current_metrics()

    current = run(scenario())
    assert current.episode == 42 and current.win_rate == 0.25


def test_a_restarted_server_is_rejoined_and_the_gap_delivered_once(make_server, unique):
    server = make_server().start()
    training_id = unique()
    url, token = server.url, server.tokens["alice"]

    async def scenario():
        async with SpectatorManager(url, token) as watcher, SpectatorManager(url, token) as trainer:
            session = await trainer.create_spectator_session(training_id)
            seen = Collector()
            await watcher.register_metrics_callback(session.session_id, seen.add)
            await trainer.update_training_metrics(session.session_id, {"episode": 1})
            await seen.wait_for_count(1)
            listener = watcher.listener(session.session_id)

            await asyncio.to_thread(server.stop)
            await asyncio.to_thread(server.start)
            # Sent before the listener is back: it arrives with the reconnect's snapshot.
            await trainer.update_training_metrics(session.session_id, {"episode": 2})
            await seen.wait_for_count(2)
            await trainer.update_training_metrics(session.session_id, {"episode": 3})
            await seen.wait_for_count(3)
            return seen.items, listener

    try:
        items, listener = run(scenario())
    finally:
        server.stop()
    assert [m.episode for m in items] == [1, 2, 3]
    assert listener.connects == 2 and listener.error is None
