"""RateLimit: at most hz events a second, on average, without bursts after a pause."""

from spectator_client.integrations.pacing import RateLimit


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def passed(limit, clock, seconds, step=0.01):
    count = 0
    for _ in range(round(seconds / step)):
        count += limit.ready()
        clock.now += step
    return count


def test_it_lets_through_hz_events_a_second():
    clock = Clock()
    assert passed(RateLimit(10, clock=clock), clock, 10.0) in (100, 101)


def test_a_long_pause_does_not_release_a_burst():
    clock = Clock()
    limit = RateLimit(10, clock=clock)
    assert limit.ready()
    clock.now += 60
    assert limit.ready()
    assert not limit.ready()
    clock.now += 0.05
    assert not limit.ready()
    clock.now += 0.05
    assert limit.ready()


def test_zero_lets_nothing_through():
    clock = Clock()
    assert passed(RateLimit(0, clock=clock), clock, 1.0) == 0
    assert passed(RateLimit(None, clock=clock), clock, 1.0) == 0
