"""Replay in the room page: pick a recorded episode, step, seek, play, pause, and see the game
view, the decision panel and the overlay follow the replayed step."""

import time

import pytest
from playwright.sync_api import expect

from spectator_client import MetricsData
from tests.browser.support import open_live, solid_png
from tests.client.support import wait_for

pytestmark = pytest.mark.browser

EPISODE = 3
STEPS = 12
T0 = time.time() - 600


def color(step: int) -> tuple[int, int, int]:
    return (20 * step + 10, 220 - 15 * step, 60 + 7 * step)


def record_episode(trainer, session) -> None:
    """An episode as a trainer streams it: a decision and a frame a step, then its metric point."""
    manager = trainer.manager
    decisions = [
        {
            "action_probabilities": {"left": step / STEPS, "right": 1 - step / STEPS},
            "state_values": float(step),
            "selected_action": "left" if step % 2 else "right",
            "episode": EPISODE,
            "step": step,
            "timestamp": T0 + step * 0.1,
        }
        for step in range(STEPS)
    ]
    for step in range(STEPS):
        trainer.run(
            manager.send_frame(session.session_id, solid_png(color(step)), "image/png", episode=EPISODE, step=step)
        )
    point = MetricsData(episode=EPISODE, current_reward=77.5, total_episodes=500, timestamp=T0 + 2)
    trainer.run(manager.update_training_metrics_batch(session.session_id, [point], decisions=decisions))

    def recorded():
        rows = trainer.run(manager.list_recorded_episodes(session.session_id))
        return any(r["episode"] == EPISODE and (r["decisions"], r["frames"]) == (STEPS, STEPS) for r in rows)

    # The server records in a background thread: wait until the episode is there.
    wait_for(recorded, timeout=10, interval=0.1, message="the recorded episode")


def canvas_shows(page, rgb) -> None:
    page.wait_for_function(
        """([r, g, b]) => {
            const canvas = document.getElementById("game-canvas");
            const [pr, pg, pb] = canvas.getContext("2d").getImageData(canvas.width / 2, canvas.height / 2, 1, 1).data;
            return pr === r && pg === g && pb === b;
        }""",
        arg=list(rgb),
    )


def expect_step(page, step: int) -> None:
    expect(page.locator("#decision-meta")).to_have_text(f"episode {EPISODE} · step {step}")
    expect(page.locator("#frame-meta")).to_have_text(f"Episode {EPISODE} · step {step}")
    expect(page.locator("#replay-step")).to_have_text(f"{step} / {STEPS - 1}")
    canvas_shows(page, color(step))


def test_replay_controls_drive_the_game_view_decisions_and_overlay(new_page, make_room, trainer, shot):
    session = make_room(name="Replay run")
    record_episode(trainer, session)
    page = new_page()
    open_live(page, session.room_code)
    status = page.locator("#replay-status")

    page.click("label[for=view-replay]")
    expect(page.locator("#replay-panel")).to_be_visible()
    expect(page.locator(f"#replay-episode option[value='{EPISODE}']")).to_have_text(
        f"Episode {EPISODE} · {STEPS} steps · reward 77.5 · {STEPS} frames"
    )
    page.select_option("#replay-episode", str(EPISODE))
    expect(status).to_have_attribute("data-status", "stopped")
    expect_step(page, 0)
    # The overlay shows the replayed episode's metrics.
    expect(page.locator("#overlay")).to_have_attribute("data-pinned", "1")
    expect(page.locator('#overlay [data-metric="current_reward"]')).to_contain_text("77.5")
    expect(page.locator("#replay-download")).to_have_attribute(
        "href", f"/api/v1/sessions/{session.training_session_id}/recordings/{EPISODE}.json"
    )

    page.click("#replay-step-forward")
    expect(status).to_have_attribute("data-status", "paused")
    expect_step(page, 1)
    expect(page.locator('#action-bars .bar[data-action="left"]')).to_have_class("bar is-chosen")
    page.locator("#replay-seek").fill("8")
    expect_step(page, 8)
    page.click("#replay-step-back")
    expect_step(page, 7)
    # By keyboard: "." steps forward from anywhere in the replay controls.
    page.focus("#replay-step-back")
    page.keyboard.press(".")
    expect_step(page, 8)

    page.select_option("#replay-speed", "10")
    expect(status).to_contain_text("10×")
    page.click("#replay-play")
    expect(status).to_have_attribute("data-status", "ended")
    expect_step(page, STEPS - 1)
    shot(page, "ended")

    page.click("#replay-stop")
    expect(status).to_have_attribute("data-status", "stopped")
    expect_step(page, 0)
    page.select_option("#replay-speed", "0.1")  # a second a step
    expect(status).to_contain_text("0.1×")
    page.click("#replay-play")
    expect(status).to_have_attribute("data-status", "playing")
    expect(page.locator("#replay-play")).to_have_attribute("aria-label", "Pause")
    page.wait_for_function("() => Number(document.getElementById('replay').dataset.step) >= 1")
    page.click("#replay-play")
    expect(status).to_have_attribute("data-status", "paused")
    held = int(page.locator("#replay").get_attribute("data-step"))
    assert 1 <= held < STEPS - 1
    expect(page.locator("#replay-play")).to_have_attribute("aria-label", "Play")
    shot(page, "paused")

    # Back to live: the overlay shows live metrics again and the controls go away.
    page.click("label[for=view-live]")
    expect(page.locator("#replay-panel")).to_be_hidden()
    expect(page.locator("#overlay")).not_to_have_attribute("data-pinned", "1")
    trainer.run(
        trainer.manager.update_training_metrics(session.session_id, MetricsData(episode=9, current_reward=3.25))
    )
    expect(page.locator('#overlay [data-metric="current_reward"]')).to_contain_text("3.25")


def test_a_spectator_follows_the_owners_replay(new_page, make_room, trainer, shot):
    session = make_room(name="Replay together")
    record_episode(trainer, session)
    owner = new_page("alice")
    open_live(owner, session.room_code)
    viewer = new_page()
    open_live(viewer, session.room_code)

    owner.click("label[for=view-replay]")
    owner.check("#replay-lead")
    expect(owner.locator("#replay-status")).to_contain_text("Choose a recorded episode")
    viewer.click("label[for=view-replay]")
    expect(viewer.locator("#replay-leader")).to_contain_text("leads a replay")
    viewer.check("#replay-follow")
    owner.select_option("#replay-episode", str(EPISODE))
    expect(owner.locator("#replay-status")).to_contain_text("you lead")
    owner.locator("#replay-seek").fill("5")
    expect_step(owner, 5)
    expect_step(viewer, 5)
    expect(viewer.locator("#replay-status")).to_contain_text("following")
    # Leaving: the viewer's own controls work again and the owner's moves no longer reach them.
    viewer.uncheck("#replay-follow")
    expect(viewer.locator("#replay-status")).not_to_contain_text("following")
    owner.click("#replay-step-forward")
    expect_step(owner, 6)
    viewer.click("#replay-step-back")
    expect_step(viewer, 4)
    shot(viewer)
