"""Recorded episodes: the file format, sampling modes, rewards, retention and the writer thread."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command
from django.db import connection as db_connection
from django.utils import timezone

from metrics import recordings
from metrics.ingest import decisions_clean, frame_parse, metric_points_clean
from metrics.models import RecordedEpisode, RecordingPolicy
from metrics.recorder import Recorder
from metrics.recording_selectors import recording_policy_for, timeline_build, timeline_of
from metrics.recording_services import (
    ORPHAN_GRACE_SECONDS,
    recording_append,
    recording_episode_discard,
    recording_policy_set,
    recording_rewards_note,
    recordings_prune,
)
from metrics.services import metric_points_append
from tests.support.live import frame_bytes

T0 = 1_700_000_000.0


def decision(episode, step, *, p=0.25, timestamp=None):
    return decisions_clean(
        [
            {
                "action_probabilities": {"left": p, "right": 1 - p},
                "q_values": [p * 10, (1 - p) * 10],
                "state_values": p,
                "selected_action": "right" if p < 0.5 else "left",
                "episode": episode,
                "step": step,
                "timestamp": T0 + step * 0.02 if timestamp is None else timestamp,
            }
        ]
    )[0]


def png(tag: int, size: int = 300) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + bytes([tag % 256]) * size


def frame(episode, step, tag=None):
    header, image = frame_parse(
        frame_bytes(
            {"type": "frame", "mime": "image/png", "episode": episode, "step": step}, png(step if tag is None else tag)
        )
    )
    return header, image


def point(episode, seq=None, reward=None, **fields):
    data = {"stream": "t", "seq": episode if seq is None else seq, "timestamp": T0 + episode, "episode": episode}
    if reward is not None:
        data["current_reward"] = reward
    data.update(fields)
    return metric_points_clean([data])[0]


def record_episode(session_id, episode, *, steps=6, frames_every=2):
    return recording_append(
        training_session_id=session_id,
        decisions=[decision(episode, step) for step in range(steps)],
        frames=[frame(episode, step) for step in range(0, steps, frames_every)],
    )


def kept(session_id) -> list[int]:
    return sorted(
        RecordedEpisode.objects.filter(training_session_id=session_id, discarded_at__isnull=True).values_list(
            "episode", flat=True
        )
    )


def file_exists(session_id, episode) -> bool:
    return recordings.absolute(recordings.episode_path(session_id, episode)).exists()


def set_policy(session, **changes):
    return recording_policy_set(training_session=session, actor=session.owner, **changes)


# --- The file ------------------------------------------------------------------------------------


def test_records_read_back_as_written(db):
    path = "s1/5.rec"
    first, second = decision(5, 0), decision(5, 1, p=0.75)
    header, image = frame(5, 1)
    recordings.append(path, recordings.decision_record(first) + recordings.frame_record(header, image))
    recordings.append(path, recordings.decision_record(second))
    entries = list(recordings.entries(path))
    assert [entry.kind for entry in entries] == [b"D", b"F", b"D"]
    assert entries[0].data == first and entries[2].data == second
    assert entries[1].data == {key: value for key, value in header.items() if key != "training_session_id"}
    assert recordings.image_at(path, entries[1].image_offset, entries[1].image_size) == image
    assert [entry.image for entry in recordings.entries(path, images=True) if entry.kind == b"F"] == [image]


def test_a_cut_short_tail_is_ignored_and_what_came_before_survives(db):
    path = "s1/6.rec"
    whole = recordings.decision_record(decision(6, 0)) + recordings.frame_record(*frame(6, 0))
    recordings.append(path, whole)
    last = recordings.decision_record(decision(6, 1))
    recordings.append(path, last[:-3])
    assert [entry.kind for entry in recordings.entries(path)] == [b"D", b"F"]
    assert list(recordings.entries("s1/missing.rec")) == []
    assert recordings.image_at("s1/missing.rec", 0, 10) is None


WRITER = """
import os, sys
import django
django.setup()
from metrics import recordings
writer, batches = int(sys.argv[1]), int(sys.argv[2])
for batch in range(batches):
    # Batches of 10 records, some with large frames: one O_APPEND write each.
    data = b"".join(
        recordings.decision_record({"writer": writer, "batch": batch, "i": i, "pad": "x" * (i * 700)})
        for i in range(10)
    )
    recordings.append("shared/1.rec", data)
"""


def test_processes_appending_to_one_episode_never_interleave_records(settings, tmp_path):
    env = {
        **os.environ,
        "SPECTATOR_RECORDINGS_DIR": str(settings.SPECTATOR_RECORDINGS_DIR),
        "SPECTATOR_DATA_DIR": str(tmp_path / "data"),
        "DJANGO_SETTINGS_MODULE": "spectator_site.settings",
    }
    batches = 150
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(n), str(batches)], env=env, cwd=settings.BASE_DIR)
        for n in range(4)
    ]
    assert [writer.wait(timeout=60) for writer in writers] == [0, 0, 0, 0]
    seen = {}
    for entry in recordings.entries("shared/1.rec"):
        data = entry.data
        assert data["pad"] == "x" * (data["i"] * 700)
        seen.setdefault((data["writer"], data["batch"]), []).append(data["i"])
    # Every record arrived whole, and each batch's records stayed together in order.
    assert len(seen) == 4 * batches
    assert all(indexes == list(range(10)) for indexes in seen.values())


# --- Recording: counters, timeline, sampling ------------------------------------------------------


def test_decisions_frames_and_point_decisions_are_recorded_per_episode(training_session):
    sid = training_session.pk
    result = recording_append(
        training_session_id=sid,
        decisions=[decision(3, step) for step in range(5)] + [decision(4, 0)],
        frames=[frame(3, step) for step in (0, 2, 4)],
        points=[point(3, reward=12.5, action_probabilities=[0.5, 0.5])],
    )
    assert result.recorded == 10 and set(result.episodes) == {3, 4}
    row = RecordedEpisode.objects.get(training_session=training_session, episode=3)
    assert (row.decisions, row.frames, row.first_step, row.last_step, row.steps) == (6, 3, 0, 4, 5)
    assert row.started_at == T0 and row.ended_at == T0 + 3  # the point's timestamp is the latest
    assert row.reward == 12.5
    assert row.bytes == recordings.file_size(row.path) > 0
    timeline = timeline_build(sid, 3, row.path)
    assert timeline.steps == [0, 1, 2, 3, 4]
    # The point's decision has no step: it belongs to the step recorded before it.
    assert [len(d) for d in timeline.decisions] == [1, 1, 1, 1, 2]
    assert timeline.decisions[4][-1]["stream"] == "t"
    assert [f is not None for f in timeline.frames] == [True, False, True, False, True]
    assert timeline.image(timeline.frames[2]) == png(2)
    assert timeline.latest_frame(3).header["step"] == 2
    assert timeline.latest_decision(2)["step"] == 2


def test_a_second_batch_adds_to_the_episode(training_session):
    sid = training_session.pk
    recording_append(training_session_id=sid, decisions=[decision(1, 5)])
    recording_append(training_session_id=sid, decisions=[decision(1, 2)], frames=[frame(1, 9)])
    row = RecordedEpisode.objects.get(training_session=training_session, episode=1)
    assert (row.decisions, row.frames, row.first_step, row.last_step) == (2, 1, 2, 9)
    assert row.bytes == recordings.file_size(row.path)
    assert timeline_build(sid, 1, row.path).steps == [2, 5, 9]


def test_records_without_an_episode_are_skipped(training_session):
    result = recording_append(training_session_id=training_session.pk, decisions=[decision(None, 1)])
    assert (result.recorded, result.skipped) == (0, 1)
    assert not RecordedEpisode.objects.exists()


def test_a_resent_point_decision_counts_once_in_the_timeline(training_session):
    sid = training_session.pk
    again = point(2, seq=9, action_probabilities=[0.1, 0.9])
    recording_append(training_session_id=sid, decisions=[decision(2, 0)], points=[again])
    recording_append(training_session_id=sid, points=[again])
    row = RecordedEpisode.objects.get(episode=2)
    assert row.decisions == 3  # as stored
    assert sum(map(len, timeline_build(sid, 2, row.path).decisions)) == 2  # as replayed


def test_timeline_pace_comes_from_timestamps_and_is_capped(training_session):
    sid = training_session.pk
    stamps = [T0, T0 + 0.1, T0 + 0.1, T0 + 30, T0 + 29]
    recording_append(
        training_session_id=sid, decisions=[decision(5, step, timestamp=t) for step, t in enumerate(stamps)]
    )
    timeline = timeline_of(RecordedEpisode.objects.get(episode=5))
    delays = [timeline.delay_after(i) for i in range(timeline.length)]
    assert delays == pytest.approx([0.1, 0.0, 1.0, 0.0, 0.0])


def test_every_nth_records_multiples_of_n(training_session):
    set_policy(training_session, mode="every_nth", every_n=3)
    for episode in range(8):
        record_episode(training_session.pk, episode)
    assert kept(training_session.pk) == [0, 3, 6]
    assert not file_exists(training_session.pk, 1)


def test_off_records_nothing(training_session):
    set_policy(training_session, mode="off")
    assert record_episode(training_session.pk, 1).recorded == 0
    assert not RecordedEpisode.objects.exists() and not file_exists(training_session.pk, 1)


def test_best_worst_keeps_episodes_until_their_reward_then_the_extremes(training_session):
    sid = training_session.pk
    set_policy(training_session, mode="best_worst", keep=1)
    for episode in range(1, 6):
        record_episode(sid, episode)
    assert kept(sid) == [1, 2, 3, 4, 5]  # provisional: no reward known yet
    rewards = {1: 10.0, 2: 50.0, 3: -5.0, 4: 20.0}
    metric_points_append(training_session=training_session, points=[point(e, reward=r) for e, r in rewards.items()])
    recording_rewards_note(training_session_id=sid, rewards=list(rewards.items()))
    assert kept(sid) == [2, 3, 5]  # best 2, worst 3, and 5 still waits for its reward
    assert not file_exists(sid, 1) and not file_exists(sid, 4) and file_exists(sid, 2)
    # A late record of a discarded episode stays out.
    assert recording_append(training_session_id=sid, decisions=[decision(1, 99)]).recorded == 0
    assert not file_exists(sid, 1)
    # Through the ingest path: the point's reward arrives with it.
    recording_append(training_session_id=sid, points=[point(5, reward=100.0)])
    assert kept(sid) == [3, 5]


def test_a_reward_stored_before_the_recording_starts_is_picked_up(training_session):
    set_policy(training_session, mode="best_worst", keep=1)
    metric_points_append(training_session=training_session, points=[point(e, reward=float(e)) for e in (1, 2, 3)])
    for episode in (1, 2, 3):
        record_episode(training_session.pk, episode)
    assert RecordedEpisode.objects.get(episode=2).discarded_at is not None
    assert kept(training_session.pk) == [1, 3]


def test_a_new_episode_past_the_byte_budget_drops_the_oldest(training_session):
    sid = training_session.pk
    record_episode(sid, 1)
    size = RecordedEpisode.objects.get(episode=1).bytes
    set_policy(training_session, max_bytes=int(size * 2.5))
    record_episode(sid, 2)
    record_episode(sid, 3)
    assert kept(sid) == [2, 3]
    assert not file_exists(sid, 1) and file_exists(sid, 3)


def test_a_smaller_budget_applies_at_once(training_session):
    sid = training_session.pk
    for episode in range(4):
        record_episode(sid, episode)
    size = RecordedEpisode.objects.get(episode=0).bytes
    set_policy(training_session, max_bytes=size)
    assert kept(sid) == [3]


def test_policy_settings_are_validated_and_only_for_the_owner(training_session, make_user):
    with pytest.raises(ValidationError) as error:
        set_policy(training_session, every_n=0)
    assert "every_n" in error.value.message_dict
    with pytest.raises(ValidationError) as error:
        set_policy(training_session, mode="sometimes")
    assert "mode" in error.value.message_dict
    with pytest.raises(PermissionDenied):
        recording_policy_set(training_session=training_session, actor=make_user("stranger"), mode="off")
    assert not RecordingPolicy.objects.exists()


def test_a_policy_change_is_seen_by_the_next_batch(training_session):
    assert recording_policy_for(training_session.pk).mode == "all"  # cached now
    set_policy(training_session, mode="off")
    assert recording_policy_for(training_session.pk).mode == "off"


def test_discarding_one_episode(training_session, make_user):
    record_episode(training_session.pk, 1)
    row = RecordedEpisode.objects.get(episode=1)
    with pytest.raises(PermissionDenied):
        recording_episode_discard(recorded_episode=row, actor=make_user("stranger"))
    assert recording_episode_discard(recorded_episode=row, actor=training_session.owner)
    assert not recording_episode_discard(recorded_episode=row, actor=training_session.owner)
    assert kept(training_session.pk) == [] and not file_exists(training_session.pk, 1)


# --- Retention sweep ----------------------------------------------------------------------------


def age(episodes, hours):
    RecordedEpisode.objects.filter(episode__in=episodes).update(updated_at=timezone.now() - timedelta(hours=hours))


def test_prune_deletes_episodes_past_their_max_age(training_session):
    sid = training_session.pk
    set_policy(training_session, max_age_hours=2)
    for episode in range(4):
        record_episode(sid, episode)
    recording_episode_discard(recorded_episode=RecordedEpisode.objects.get(episode=3), actor=training_session.owner)
    age([0, 1, 3], hours=3)
    result = recordings_prune()
    assert result["expired"] == 2  # kept episodes only; the old tombstone goes too
    assert list(RecordedEpisode.objects.values_list("episode", flat=True)) == [2]
    assert not file_exists(sid, 0) and file_exists(sid, 2)
    assert recordings_prune()["expired"] == 0


def test_prune_applies_the_byte_budget_oldest_first(training_session, settings):
    sid = training_session.pk
    for episode in range(5):
        record_episode(sid, episode)
    size = RecordedEpisode.objects.get(episode=0).bytes
    settings.SPECTATOR_RECORDING_MAX_BYTES = size * 2
    assert recordings_prune()["over_budget"] == 3
    assert kept(sid) == [3, 4]


def test_prune_removes_quiet_orphan_files_and_empty_folders(training_session):
    sid = training_session.pk
    record_episode(sid, 1)
    recordings.append(f"{sid}/77.rec", b"stray")
    recordings.append(f"{sid}/78.rec", b"fresh")
    recordings.append("deleted-session/3.rec", b"left over")
    old = time.time() - ORPHAN_GRACE_SECONDS - 10
    for path in (f"{sid}/77.rec", "deleted-session/3.rec"):
        os.utime(recordings.absolute(path), (old, old))
    assert recordings_prune()["orphan_files"] == 2
    assert file_exists(sid, 1) and recordings.absolute(f"{sid}/78.rec").exists()
    assert not recordings.absolute(f"{sid}/77.rec").exists()
    assert not recordings.absolute("deleted-session").exists()


def test_prune_command_reports(training_session, capsys):
    record_episode(training_session.pk, 1)
    age([1], hours=10_000)
    call_command("prune_recordings")
    assert "1 episode(s) expired" in capsys.readouterr().out


@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_share_the_work_without_errors(training_session, settings):
    sid = training_session.pk
    for episode in range(12):
        record_episode(sid, episode)
    newest = RecordedEpisode.objects.filter(episode__gte=8).values_list("bytes", flat=True)
    age([0, 1, 2], hours=settings.SPECTATOR_RECORDING_MAX_AGE_HOURS + 1)
    settings.SPECTATOR_RECORDING_MAX_BYTES = sum(newest)
    start = threading.Barrier(2)
    results, errors = [], []

    def sweep():
        try:
            start.wait(timeout=10)
            results.append(recordings_prune())
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            db_connection.close()

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors and len(results) == 2, errors
    # Each of the 8 episodes was removed exactly once, by one sweep or the other (an old one the
    # budget pass reached first counts as over budget rather than expired).
    assert sum(r["expired"] + r["over_budget"] for r in results) == 8
    assert sum(r["expired"] for r in results) <= 3
    assert kept(sid) == [8, 9, 10, 11]
    assert sorted(p.name for p in recordings.absolute(sid).iterdir()) == [f"{e}.rec" for e in (10, 11, 8, 9)]


# --- The writer thread -------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_writer_thread_batches_and_flush_waits_for_it(training_session, settings):
    settings.SPECTATOR_RECORDING_WRITER = "thread"
    writer = Recorder()
    for step in range(30):
        writer.submit(training_session.pk, decisions=[decision(1, step)])
        if step % 3 == 0:
            writer.submit(training_session.pk, frames=[frame(1, step)])
    writer.submit(training_session.pk, points=[point(1, reward=3.0)])
    assert writer.flush(timeout=20)
    row = RecordedEpisode.objects.get(training_session=training_session, episode=1)
    assert (row.decisions, row.frames, row.reward) == (30, 10, 3.0)
    assert writer.stats.recorded == 40 and writer.stats.dropped == 0
    assert row.bytes == recordings.file_size(row.path)


@pytest.mark.django_db(transaction=True)
def test_a_full_queue_drops_and_counts_instead_of_waiting(training_session, settings):
    settings.SPECTATOR_RECORDING_WRITER = "thread"
    writer = Recorder(max_queued_bytes=2000)
    writer.submit(training_session.pk, frames=[frame(1, 0, tag=1)])
    writer.submit(training_session.pk, frames=[(frame(1, 1)[0], png(1, size=5000))])
    assert writer.stats.dropped == 1
    assert writer.flush(timeout=20)
    assert RecordedEpisode.objects.get(episode=1).frames == 1
