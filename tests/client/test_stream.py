"""SpectatorStream, the synchronous facade: never blocks the training loop, delivers everything once."""

import socket
import threading

import httpx
import pytest

from spectator_client import MetricsData, SpectatorStream
from tests.client.support import free_port, wait_for

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 128


@pytest.fixture
def socket_callers(monkeypatch):
    """Record which threads open, write to or read from a socket while the test runs."""
    callers: set[int] = set()
    for name in ("connect", "connect_ex", "send", "sendall", "recv", "recv_into"):
        original = getattr(socket.socket, name)

        def spy(self, *args, _original=original, **kwargs):
            callers.add(threading.get_ident())
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(socket.socket, name, spy)
    return callers


def stored_points(server, training_id):
    with server.api("alice") as api:
        response = api.get(f"sessions/{training_id}/metrics/", params={"limit": 5000})
        response.raise_for_status()
        return [row["data"] for row in response.json()]


def test_a_training_loop_never_makes_a_network_call(spectator_server, unique, socket_callers):
    training_id = unique()
    with SpectatorStream(
        training_id, spectator_server.url, spectator_server.tokens["alice"], algorithm="DQN"
    ) as stream:
        for step in range(10_000):
            stream.log_metrics(MetricsData(episode=step // 100, current_reward=float(step), epsilon=0.1))
            if step % 100 == 0:
                stream.log_decision({"left": 0.5, "right": 0.5}, selected_action="left", step=step)
        assert threading.get_ident() not in socket_callers
        assert stream.flush(timeout=60)
        stats = stream.stats()
    assert socket_callers and threading.get_ident() not in socket_callers
    assert stats["sent_metrics"] == 10_000 and stats["sent_decisions"] == 100 and stats["dropped"] == 0
    # Batched: far fewer requests than points.
    assert stats["requests"] <= 10_000 // 100
    points = stored_points(spectator_server, training_id)
    assert [p["seq"] for p in points] == list(range(5000))  # the first page of history
    assert {p["stream"] for p in points} == {stream.stream}


def test_buffers_are_bounded_and_every_drop_is_counted():
    down = f"http://127.0.0.1:{free_port()}"
    stream = SpectatorStream(
        "bounded", down, "spt_x", max_metric_points=1000, max_pending=10, backoff_initial=10, backoff_max=10
    )
    try:
        for episode in range(1500):
            stream.log_metrics(episode=episode)
        for step in range(5):
            stream.log_decision([0.5, 0.5], step=step)
        for step in range(8):
            stream.log_frame(PNG, step=step)
        stats = stream.stats()
        # The five decisions were older than the eight frames: they went first.
        assert stats["dropped_metrics"] == 500 and stats["pending_metrics"] == 1000
        assert (stats["dropped_decisions"], stats["dropped_frames"]) == (3, 0)
        assert (stats["pending_decisions"], stats["pending_frames"]) == (2, 8)
        for step in range(5):
            stream.log_frame(PNG, step=100 + step)
        stats = stream.stats()
        assert (stats["dropped_decisions"], stats["dropped_frames"]) == (5, 3)
        with pytest.raises(ValueError):
            stream.log_frame(b"GIF89a not supported")
        with pytest.raises(TypeError):
            stream.log_metrics("not metrics")
    finally:
        assert stream.close(timeout=0) is False
    stats = stream.stats()
    assert stats["sent"] == 0 and stats["pending_metrics"] == 0
    assert stats["dropped_metrics"] == 1500 and stats["dropped_frames"] == 13
    stream.log_metrics(episode=1)
    assert stream.stats()["dropped_metrics"] == 1501


def test_server_down_then_up_delivers_everything_exactly_once(make_server, unique, socket_callers):
    server = make_server()
    training_id = unique()
    stream = SpectatorStream(
        training_id,
        server.url,
        server.tokens["alice"],
        backoff_initial=0.05,
        backoff_max=0.25,
        flush_interval=0.05,
    )
    try:
        for step in range(3000):
            stream.log_metrics(MetricsData(episode=step, current_reward=float(step)))
        for step in range(20):
            stream.log_decision({"a": 1.0}, step=step)
        stream.log_frame(PNG, episode=1, step=1)
        wait_for(lambda: stream.stats()["retried"] >= 2, 10, message="the sender to retry against the closed port")
        assert stream.stats()["sent"] == 0
        assert threading.get_ident() not in socket_callers

        server.start()
        assert stream.flush(timeout=30)
        stats = stream.stats()
    finally:
        stream.close(timeout=5)
    assert stats["connected"] and stats["dropped"] == 0
    assert (stats["sent_metrics"], stats["sent_decisions"], stats["sent_frames"]) == (3000, 20, 1)
    points = stored_points(server, training_id)
    assert len(points) == 3000
    assert sorted(p["seq"] for p in points) == list(range(3000))
    assert [p["episode"] for p in points] == list(range(3000))


class LoseFirstResponses(httpx.BaseTransport):
    """Forward to the real server, but lose the response of the first ``n`` ingest requests."""

    def __init__(self, n: int):
        self.inner = httpx.HTTPTransport()
        self.remaining = n

    def handle_request(self, request):
        response = self.inner.handle_request(request)
        if request.url.path.endswith("/ingest/") and self.remaining > 0:
            self.remaining -= 1
            response.read()
            raise httpx.ReadError("connection reset after the server stored the batch", request=request)
        return response

    def close(self):
        self.inner.close()


def test_a_batch_retried_after_a_lost_response_is_stored_once(spectator_server, unique):
    training_id = unique()
    with SpectatorStream(
        training_id,
        spectator_server.url,
        spectator_server.tokens["alice"],
        backoff_initial=0.01,
        backoff_max=0.05,
        transport=LoseFirstResponses(2),
    ) as stream:
        for step in range(300):
            stream.log_metrics(episode=step)
        assert stream.flush(timeout=20)
        stats = stream.stats()
    assert stats["retried"] == 2 and stats["duplicates"] == 300 and stats["sent_metrics"] == 300
    assert sorted(p["seq"] for p in stored_points(spectator_server, training_id)) == list(range(300))


def test_a_point_the_server_refuses_is_dropped_and_the_rest_delivered(spectator_server, unique):
    training_id = unique()
    with SpectatorStream(training_id, spectator_server.url, spectator_server.tokens["alice"]) as stream:
        stream.log_metrics(episode=1, win_rate=0.5)
        stream.log_metrics(episode=2, win_rate=7.0)
        stream.log_metrics(episode=3, custom_scalar=1.5)
        stream.log_decision({"left": 0.9, "right": 0.9})
        stream.log_decision({"left": 0.1, "right": 0.9})
        stream.set_status("paused", "evaluating")
        assert stream.flush(timeout=20)
        stats = stream.stats()
    assert (stats["rejected_metrics"], stats["rejected_decisions"]) == (1, 1)
    assert (stats["sent_metrics"], stats["sent_decisions"], stats["sent_statuses"]) == (2, 1, 1)
    points = stored_points(spectator_server, training_id)
    assert [p["episode"] for p in points] == [1, 3] and points[1]["extra"] == {"custom_scalar": 1.5}
    with spectator_server.api("alice") as api:
        assert api.get(f"sessions/{training_id}/").json()["status"] == "paused"


def test_a_bad_token_stops_the_sender_without_blocking(spectator_server, unique):
    stream = SpectatorStream(unique(), spectator_server.url, "spt_wrong")
    stream.log_metrics(episode=1)
    assert stream.flush(timeout=20) is False
    stats = stream.stats()
    assert "token" in stats["error"].lower() and stats["sent"] == 0
    stream.log_metrics(episode=2)
    assert stream.close(timeout=1) is False
    assert stream.stats()["dropped_metrics"] == 2


def test_a_status_waits_for_what_was_logged_before_it(spectator_server, unique):
    # "completed" closes the session to ingest: sent ahead of the last points, it would lose them.
    training_id = unique()
    stream = SpectatorStream(training_id, spectator_server.url, spectator_server.tokens["alice"])
    stream.set_status("running")
    for episode in range(1, 51):
        stream.log_metrics(episode=episode, current_reward=float(episode))
        stream.log_decision([0.5, 0.5], step=episode)
    stream.set_status("completed", "done")
    assert stream.close(timeout=30)
    stats = stream.stats()
    assert (stats["sent_metrics"], stats["sent_decisions"], stats["sent_statuses"], stats["dropped"]) == (50, 50, 2, 0)
    assert [p["episode"] for p in stored_points(spectator_server, training_id)] == list(range(1, 51))
    with spectator_server.api("alice") as api:
        assert api.get(f"sessions/{training_id}/").json()["status"] == "completed"
