"""SpectatorManager and TrainingMetricsOverlay against a real server (daphne on a loopback port)."""

import json

import pytest

import spectator_client as sc
from spectator_client import MetricsData, SpectatorManager, SpectatorMode, TrainingMetricsOverlay
from tests.client.support import free_port, run


def manager_for(server, user):
    return SpectatorManager(server.url, server.tokens[user] if user else "")


def test_create_spectator_session_creates_the_training_session_and_a_room(spectator_server, unique):
    training_id = unique()

    async def scenario():
        async with manager_for(spectator_server, "alice") as manager:
            session = await manager.create_spectator_session(
                training_id, spectator_mode=SpectatorMode.LIVE_TRAINING, max_spectators=5, session_duration_hours=2
            )
            again = await manager.create_spectator_session(training_id, password_protected=True)
            return session, again

    session, again = run(scenario())
    assert isinstance(session, sc.SpectatorSession)
    assert session.training_session_id == training_id and len(session.room_code) == 6
    assert session.room_password is None and session.max_spectators == 5 and session.current_spectators == 0
    assert session.spectator_mode is SpectatorMode.LIVE_TRAINING
    assert 1.9 < (session.expires_at - session.created_at).total_seconds() / 3600 < 2.1
    json.dumps(session.to_dict())
    # The training session already existed the second time (idempotent), and got a second room.
    assert again.session_id != session.session_id and again.room_password
    with spectator_server.api("alice") as api:
        assert api.get(f"sessions/{training_id}/").json()["owner"] == "alice"


def test_join_spectator_session(spectator_server, unique):
    training_id = unique()

    async def scenario():
        async with (
            manager_for(spectator_server, "alice") as owner,
            manager_for(spectator_server, "bob") as bob,
            manager_for(spectator_server, "carol") as carol,
        ):
            public = await owner.create_spectator_session(training_id)
            locked = await owner.create_spectator_session(training_id, password_protected=True)
            joined = await bob.join_spectator_session(public.session_id, "Bob the viewer")
            by_code = await bob.join_spectator_session(locked.room_code.lower(), "Bob", password=locked.room_password)
            with pytest.raises(sc.InvalidPassword) as missing:
                await carol.join_spectator_session(locked.session_id, "Carol")
            with pytest.raises(sc.InvalidPassword) as wrong:
                await carol.join_spectator_session(locked.session_id, "Carol", password="wrong-password")
            with pytest.raises(sc.RoomNotFound):
                await bob.join_spectator_session("ZZZZZZ", "Bob")
            with pytest.raises(sc.AccessDenied):
                await bob.join_spectator_session(public.session_id, "Bob", user_id="carol")
            info = await owner.get_session_info(public.session_id)
            return public, joined, by_code, missing.value, wrong.value, info

    public, joined, by_code, missing, wrong, info = run(scenario())
    assert joined["status"] == "approved" and joined["session_id"] == public.session_id
    assert joined["room_code"] == public.room_code and joined["display_name"] == "Bob the viewer"
    assert joined["websocket_url"].startswith(f"ws://127.0.0.1:{spectator_server.port}/ws/rooms/{public.room_code}/")
    assert "ticket=" in joined["websocket_url"]
    assert by_code["status"] == "approved"
    assert (missing.code, wrong.code) == ("password_required", "wrong_password")
    assert info["current_spectators"] == 1


def test_update_training_metrics_is_stored_once_and_validated(spectator_server, unique):
    training_id = unique()

    async def scenario():
        async with manager_for(spectator_server, "alice") as manager:
            session = await manager.create_spectator_session(training_id)
            first = await manager.update_training_metrics(
                session.session_id, MetricsData(episode=1, current_reward=2.5, win_rate=0.5, extra={"kl": 0.01})
            )
            by_code = await manager.update_training_metrics(session.room_code, {"episode": 2, "current_reward": 3.0})
            by_training_id = await manager.update_training_metrics(training_id, {"episode": 3})
            with pytest.raises(sc.ValidationError) as invalid:
                await manager.update_training_metrics(session.session_id, MetricsData(episode=4, win_rate=1.5))
            with pytest.raises(sc.RoomNotFound):
                await manager.update_training_metrics("no-such-thing", MetricsData(episode=1))
            # The same point (same stream and seq) sent again is a duplicate, not a second row.
            point = manager.sequence.point(MetricsData(episode=5))
            path = f"sessions/{training_id}/ingest/"
            once = await manager.api.post(path, {"points": [point]})
            twice = await manager.api.post(path, {"points": [point]})
            history = await manager.get_metrics_history(session.session_id)
            return first, by_code, by_training_id, invalid.value, once, twice, history, manager.stream

    first, by_code, by_training_id, invalid, once, twice, history, stream = run(scenario())
    assert first["accepted"] == 1 and by_code["accepted"] == 1 and by_training_id["accepted"] == 1
    assert invalid.field == "points.0.win_rate"
    assert (once["accepted"], once["duplicates"]) == (1, 0)
    assert (twice["accepted"], twice["duplicates"]) == (0, 1)
    assert [metrics.episode for _id, metrics in history] == [1, 2, 3, 5]
    assert history[0][1].extra == {"kl": 0.01} and history[0][1].win_rate == 0.5


def test_only_the_owner_streams_into_a_training_session(spectator_server, unique):
    training_id = unique()

    async def scenario():
        async with manager_for(spectator_server, "alice") as alice, manager_for(spectator_server, "bob") as bob:
            session = await alice.create_spectator_session(training_id)
            with pytest.raises(sc.TrainingSessionNotFound):
                await bob.update_training_metrics(session.session_id, MetricsData(episode=1))
            with pytest.raises(sc.ValidationError) as taken:
                await bob.create_spectator_session(training_id)
            return taken.value

    assert run(scenario()).field == "id"


def test_list_leave_and_close(spectator_server, unique):
    training_id = unique()

    async def scenario():
        async with manager_for(spectator_server, "alice") as alice, manager_for(spectator_server, "bob") as bob:
            session = await alice.create_spectator_session(training_id)
            await bob.join_spectator_session(session.session_id, "Bob")
            seated = (await alice.get_session_info(session.session_id))["current_spectators"]
            await bob.leave_spectator_session(session.session_id)
            await bob.leave_spectator_session(session.session_id)
            after_leave = (await alice.get_session_info(session.session_id))["current_spectators"]
            listed = [item["session_id"] for item in await alice.list_active_sessions()]
            with pytest.raises(sc.AccessDenied):
                await bob.close_session(session.session_id)
            closed = await alice.close_session(session.session_id)
            with pytest.raises(sc.RoomClosed) as gone:
                await bob.join_spectator_session(session.session_id, "Bob")
            listed_after = [item["session_id"] for item in await alice.list_active_sessions()]
            return session, seated, after_leave, listed, closed, gone.value, listed_after

    session, seated, after_leave, listed, closed, gone, listed_after = run(scenario())
    assert (seated, after_leave) == (1, 0)
    assert session.session_id in listed and session.session_id not in listed_after
    assert closed["room_status"] == "closed"
    assert isinstance(gone, sc.RoomExpired) and isinstance(gone, RuntimeError) and gone.status == 410


def test_an_expired_room_raises_room_expired(spectator_server):
    async def scenario():
        async with manager_for(spectator_server, "bob") as bob:
            await bob.join_spectator_session("XPRD22", "Bob")

    with pytest.raises(sc.RoomExpired) as caught:
        run(scenario())
    assert type(caught.value) is sc.RoomExpired and caught.value.code == "room_expired"


def test_a_bad_token_and_an_unreachable_server(spectator_server):
    async def bad_token():
        async with SpectatorManager(spectator_server.url, "spt_not-a-real-token") as manager:
            await manager.list_active_sessions()

    with pytest.raises(sc.AuthenticationRequired):
        run(bad_token())

    async def unreachable():
        async with SpectatorManager(f"http://127.0.0.1:{free_port()}", "spt_x", timeout=2) as manager:
            await manager.create_spectator_session("anything")

    with pytest.raises(sc.ServerUnavailable) as caught:
        run(unreachable())
    assert isinstance(caught.value, ConnectionError)


def test_overlay_sends_metrics_and_decisions_and_reads_history(spectator_server, unique):
    training_id = unique()

    async def scenario():
        async with manager_for(spectator_server, "alice") as manager:
            session = await manager.create_spectator_session(training_id)
            async with TrainingMetricsOverlay(session.session_id, manager=manager) as overlay:
                assert overlay.get_current_metrics() is None
                for episode in range(3):
                    await overlay.update_metrics(MetricsData(episode=episode, current_reward=float(episode)))
                decision = await overlay.send_bot_decision_data(
                    {"left": 0.2, "right": 0.8}, state_values=1.25, q_values=[0.1, 0.4], selected_action="right"
                )
                with pytest.raises(sc.ValidationError) as invalid:
                    await overlay.send_bot_decision_data({"left": 0.9, "right": 0.9})
                history = await overlay.get_metrics_history()
                later = await overlay.get_metrics_history(limit=1)
                current = overlay.get_current_metrics()
        # An overlay of its own (server_url and token) works the same way.
        async with TrainingMetricsOverlay(
            session.room_code, spectator_server.url, spectator_server.tokens["alice"]
        ) as standalone:
            await standalone.update_metrics({"episode": 3, "current_reward": 3.0})
            history_all = await standalone.get_metrics_history()
        return decision, invalid.value, history, later, current, history_all

    decision, invalid, history, later, current, history_all = run(scenario())
    assert decision["decisions"] == 1
    assert invalid.field == "decisions.0.action_probabilities"
    assert [m.current_reward for m in history] == [0.0, 1.0, 2.0] and len(later) == 1
    assert current.episode == 2
    assert [m.episode for m in history_all] == [0, 1, 2, 3]


def test_frames_and_status(spectator_server, unique):
    training_id = unique()
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64

    async def scenario():
        async with manager_for(spectator_server, "alice") as manager:
            session = await manager.create_spectator_session(training_id)
            frame = await manager.send_frame(session.session_id, png, episode=1, step=2)
            with pytest.raises(ValueError):
                await manager.send_frame(session.session_id, b"not an image")
            status = await manager.set_training_status(session.session_id, "paused", "checkpointing")
            with pytest.raises(sc.ValidationError) as invalid:
                await manager.set_training_status(session.session_id, "sleeping")
            return frame, status, invalid.value

    frame, status, invalid = run(scenario())
    assert frame == {"accepted": 1} and status["status"] == "paused" and invalid.field == "status"
