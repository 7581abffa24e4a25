"""The shared channel-layer subscriber under the room hub and the replay coordinator."""

import asyncio

import pytest

from rooms import subscriber as subscriber_module
from rooms.replay_player import ReplayCoordinator, replay_group_name
from rooms.subscriber import GroupSubscriber


class FakeLayer:
    """A channel layer whose reads fail on demand, and whose cancelled read looks like Redis's."""

    def __init__(self, *, failing_reads=0, failing_joins=0, cancel_as_connection_error=False):
        self.failing_reads = failing_reads
        self.failing_joins = failing_joins
        self.cancel_as_connection_error = cancel_as_connection_error
        self.inbox: asyncio.Queue = asyncio.Queue()
        self.joined: list[str] = []
        self.reads = 0

    async def new_channel(self, prefix):
        return f"{prefix}test"

    async def receive(self, channel):
        self.reads += 1
        if self.failing_reads:
            self.failing_reads -= 1
            raise ConnectionError("the layer went away")
        try:
            return await self.inbox.get()
        except asyncio.CancelledError:
            if self.cancel_as_connection_error:
                # redis-py disconnects when a read is cancelled; a clean-up on that connection fails.
                raise ConnectionError("Connection closed by server.") from None
            raise

    async def group_add(self, group, channel):
        if self.failing_joins:
            self.failing_joins -= 1
            raise ConnectionError("still away")
        self.joined.append(group)

    async def group_discard(self, group, channel):
        pass


class Recorder(GroupSubscriber):
    channel_prefix = "test."
    label = "test subscriber"

    def __init__(self, groups=()):
        super().__init__()
        self.groups = list(groups)
        self.messages: asyncio.Queue = asyncio.Queue()
        self.rejoins = asyncio.Event()
        self.errors = 0

    def subscribed_groups(self):
        return self.groups

    def dispatch(self, message):
        self.messages.put_nowait(message)

    def rejoined(self):
        self.rejoins.set()

    def count_layer_error(self):
        self.errors += 1


@pytest.fixture
def fast_recovery(monkeypatch):
    monkeypatch.setattr(subscriber_module, "RECOVERY_FIRST_DELAY", 0.01)
    monkeypatch.setattr(subscriber_module, "RECOVERY_MAX_DELAY", 0.02)


def use(monkeypatch, layer):
    monkeypatch.setattr(subscriber_module, "get_channel_layer", lambda: layer)
    return layer


async def test_a_cancelled_read_that_surfaces_as_a_connection_error_still_stops_the_reader(monkeypatch):
    use(monkeypatch, FakeLayer(cancel_as_connection_error=True))
    subscriber = Recorder(["g"])
    async with subscriber._lock:
        await subscriber.ensure_channel()
    reader = subscriber._reader
    await asyncio.sleep(0)  # the reader is now waiting in receive

    await asyncio.wait_for(subscriber.aclose(), 2)

    assert reader.cancelled()
    assert subscriber.errors == 0  # not taken for an outage


async def test_after_failed_reads_and_joins_every_group_is_joined_again_then_reading_resumes(
    monkeypatch, fast_recovery
):
    layer = use(monkeypatch, FakeLayer(failing_reads=1, failing_joins=2))
    subscriber = Recorder(["room.1", "session.a"])
    async with subscriber._lock:
        await subscriber.ensure_channel()

    await asyncio.wait_for(subscriber.rejoins.wait(), 2)
    assert layer.joined == ["room.1", "session.a"]
    assert subscriber.errors == 3  # one read, two joins
    layer.inbox.put_nowait({"type": "x"})
    assert await asyncio.wait_for(subscriber.messages.get(), 2) == {"type": "x"}
    await subscriber.aclose()


async def test_a_failed_periodic_refresh_is_counted_and_the_next_one_still_runs(monkeypatch):
    monkeypatch.setattr(subscriber_module, "GROUP_REFRESH_SECONDS", 0.01)
    layer = use(monkeypatch, FakeLayer(failing_joins=1))
    subscriber = Recorder(["room.1"])
    async with subscriber._lock:
        await subscriber.ensure_channel()

    while not layer.joined:
        await asyncio.sleep(0.01)
    assert subscriber.errors == 1
    assert not subscriber._refresher.done()
    await subscriber.aclose()


async def test_the_replay_coordinator_rejoins_its_rooms_after_an_outage(monkeypatch, fast_recovery):
    layer = use(monkeypatch, FakeLayer())
    coordinator = ReplayCoordinator()

    class Player:
        room_id = "room-1"

        def leader_message(self, message):
            pass

    await coordinator.register(Player())
    assert layer.joined == [replay_group_name("room-1")]
    layer.failing_reads = 1
    layer.inbox.put_nowait({"type": "replay.leader", "room_id": "room-1", "state": None})  # wakes the reader

    while len(layer.joined) < 2:
        await asyncio.sleep(0.01)
    assert layer.joined == [replay_group_name("room-1")] * 2
    await coordinator.aclose()
