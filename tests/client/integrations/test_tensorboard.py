"""The TensorBoard-style SummaryWriter: a script written for TensorBoard streams with one changed import."""

import numpy as np
import pytest

from spectator_client import SpectatorStream
from spectator_client.integrations.tensorboard import SummaryWriter, tag_field


def stored_points(server, training_id):
    with server.api("alice") as api:
        response = api.get(f"sessions/{training_id}/metrics/", params={"limit": 5000})
        response.raise_for_status()
        return [row["data"] for row in response.json()]


@pytest.mark.parametrize(
    ("tag", "field"),
    [
        ("charts/episodic_return", "current_reward"),
        ("Reward", "current_reward"),
        ("rollout/ep_rew_mean", "average_reward"),
        ("charts/episodic_length", "episode_length"),
        ("losses/td_loss", "loss_value"),
        ("train/loss", "loss_value"),
        ("charts/learning_rate", "learning_rate"),
        ("charts/epsilon", "epsilon"),
        ("rollout/exploration_rate", "epsilon"),
        ("charts/SPS", "actions_per_second"),
        ("eval/success-rate", "win_rate"),
        ("losses/value_loss", None),
        ("charts/q_values", None),
    ],
)
def test_tags_name_their_fields(tag, field):
    assert tag_field(tag) == field


def test_a_tensorboard_script_streams_its_scalars_per_step(spectator_server, unique):
    training_id = unique("tb")
    # The script below is what a CleanRL-style script logs; only the import line changed.
    writer = SummaryWriter(
        f"runs/{training_id}",
        training_session_id=training_id,
        server_url=spectator_server.url,
        api_token=spectator_server.tokens["alice"],
        algorithm="DQN",
    )
    for step in range(1, 6):
        writer.add_scalar("charts/episodic_return", 10.0 * step, step)
        writer.add_scalar("charts/episodic_length", np.int64(10 * step), step)
        writer.add_scalar("losses/td_loss", np.float32(1.0 / step), step)
        writer.add_scalar("charts/epsilon", 1.0 - step / 10, step)
        writer.add_scalars("losses", {"q_values": 2.0 * step, "bad value!": 1.0}, step)
    writer.add_histogram("weights", np.zeros(3), 5)  # accepted, not streamed
    writer.add_text("notes", "hello", 5)
    writer.add_image("board", np.full((3, 8, 12), 0.5), 5)
    writer.close()

    points = stored_points(spectator_server, training_id)
    assert [p["episode"] for p in points] == [1, 2, 3, 4, 5]
    last = points[-1]
    assert (last["current_reward"], last["episode_length"], last["epsilon"]) == (50.0, 50, 0.5)
    assert last["loss_value"] == pytest.approx(0.2)
    assert last["algorithm"] == "DQN"
    assert last["extra"] == {"losses/q_values": 10.0, "losses/bad value_": 1.0}
    assert writer.spectator.stats()["sent_frames"] == 1


def test_values_a_field_cannot_hold_become_custom_scalars_and_a_shared_stream_stays_open(spectator_server, unique):
    stream = SpectatorStream(unique("tb"), spectator_server.url, spectator_server.tokens["alice"])
    with SummaryWriter(stream=stream) as writer:
        writer.add_scalar("success_rate", 1.5, 0)  # not a rate in [0, 1]
        writer.add_scalar("lr", -1.0, 0)  # a learning rate cannot be negative
        writer.add_scalar("reward", float("nan"), 0)  # skipped
        writer.add_scalar("reward", 3.0)  # no step: the last one
    assert stream.flush(timeout=30)
    [point] = stored_points(spectator_server, stream.training_session_id)
    assert point["episode"] == 0 and point["current_reward"] == 3.0
    assert point["extra"] == {"success_rate": 1.5, "lr": -1.0}
    stream.log_metrics(episode=1)  # still open: the writer did not own it
    assert stream.close(timeout=30)
