"""The client's recording methods against a real server (its writer thread records what ingest takes)."""

import asyncio
import time

import pytest

import spectator_client as sc
from spectator_client import RecordingMode, SpectatorManager
from tests.client.support import run

PNG = b"\x89PNG\r\n\x1a\n"


def manager_for(server, user):
    return SpectatorManager(server.url, server.tokens[user])


async def until(coroutine_factory, predicate, timeout: float = 10.0, interval: float = 0.05):
    """Ask again until ``predicate`` holds for the answer (the server records in a background thread)."""
    deadline = time.monotonic() + timeout
    while True:
        answer = await coroutine_factory()
        if predicate(answer):
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; last answer: {answer!r}")
        await asyncio.sleep(interval)


def test_configure_record_list_and_export(spectator_server, unique):
    training_id = unique()

    async def scenario():
        async with manager_for(spectator_server, "alice") as alice, manager_for(spectator_server, "bob") as bob:
            session = await alice.create_spectator_session(training_id)
            settings = await alice.configure_recording(session.session_id, RecordingMode.EVERY_NTH, every_n=2)
            again = await alice.configure_recording(training_id, max_age_hours=12.5)
            with pytest.raises(sc.ValidationError) as bad_mode:
                await alice.configure_recording(training_id, "sometimes")
            with pytest.raises(sc.ValidationError) as bad_n:
                await alice.configure_recording(training_id, every_n=0)
            with pytest.raises(sc.ValidationError) as nothing:
                await alice.configure_recording(training_id)
            with pytest.raises(sc.TrainingSessionNotFound):
                await bob.configure_recording(training_id, "off")

            for episode in range(4):
                for step in range(5):
                    await alice.send_bot_decision(
                        session.session_id,
                        {"left": step / 10, "right": 1 - step / 10},
                        selected_action="right",
                        episode=episode,
                        step=step,
                    )
                await alice.send_frame(session.session_id, PNG + bytes([episode]) * 32, episode=episode, step=4)
            episodes = await until(
                lambda: alice.list_recorded_episodes(session.session_id),
                lambda rows: [(r["episode"], r["decisions"], r["frames"]) for r in rows] == [(2, 5, 1), (0, 5, 1)],
            )
            export = await alice.export_recorded_episode(session.session_id, 2)
            light = await alice.export_recorded_episode(training_id, 0, images=False)

            # A spectator of one of its rooms may read the recordings too, until they leave.
            await bob.join_spectator_session(session.session_id, "Bob")
            seen_by_bob = await bob.list_recorded_episodes(session.session_id, ordering="episode")
            await bob.leave_spectator_session(session.session_id)
            with pytest.raises(sc.NotFoundError):
                await bob.export_recorded_episode(session.session_id, 2)
            return settings, again, bad_mode.value, bad_n.value, nothing.value, episodes, export, light, seen_by_bob

    settings, again, bad_mode, bad_n, nothing, episodes, export, light, seen_by_bob = run(scenario())
    assert (settings["mode"], settings["every_n"]) == ("every_nth", 2)
    assert (again["mode"], again["max_age_hours"]) == ("every_nth", 12.5)
    assert (bad_mode.field, bad_n.field, nothing.field) == ("recording.mode", "recording.every_n", "recording")
    assert isinstance(bad_n, ValueError)
    assert episodes[0]["steps"] == 5 and episodes[0]["bytes"] > 0
    assert export["episode"] == 2 and export["recording"]["decisions"] == 5
    assert [d["step"] for d in export["decisions"]] == [0, 1, 2, 3, 4]
    assert export["decisions"][1]["action_probabilities"] == {"left": 0.1, "right": 0.9}
    assert [f["image"] for f in export["frames"]] == [PNG + bytes([2]) * 32]
    assert light["frames"][0]["size"] == len(PNG) + 32 and "image" not in light["frames"][0]
    assert [row["episode"] for row in seen_by_bob] == [0, 2]
