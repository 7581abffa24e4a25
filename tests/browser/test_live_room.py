"""The live room: metrics into the overlay and the graphs, frames on the canvas, decisions,
moderation, the phone layout, and user text shown as text."""

import math
import os
import shutil
import time

import pytest
from playwright.sync_api import expect

from spectator_client import MetricsData
from tests.browser.support import game_frame, history, no_horizontal_scroll, open_live, solid_png
from tests.support.servers import ROOT

pytestmark = pytest.mark.browser


def reward_points(page) -> int:
    return int(page.locator('.graph[data-graph-id="reward_progress"]').get_attribute("data-points"))


def test_pushed_metric_reaches_overlay_and_reward_graph_within_a_second(new_page, make_room, trainer, shot):
    session = make_room(name="CartPole DQN")
    trainer.run(trainer.manager.update_training_metrics_batch(session.session_id, history(140)))
    page = new_page(viewport={"width": 1360, "height": 1020}, color_scheme="dark")
    open_live(page, session.room_code)
    graph = page.locator('.graph[data-graph-id="reward_progress"]')
    expect(graph).to_have_attribute("data-points", "140")

    started = time.monotonic()
    trainer.run(
        trainer.manager.update_training_metrics(
            session.session_id,
            MetricsData(timestamp=time.time(), episode=141, total_episodes=500, current_reward=251.25, win_rate=0.975),
        )
    )
    expect(page.locator('[data-metric="current_reward"]')).to_have_text("251.25", timeout=1000)
    expect(graph).to_have_attribute("data-points", "141", timeout=1000)
    elapsed = time.monotonic() - started
    assert elapsed < 1.5, f"push to screen took {elapsed:.2f} s"
    expect(page.locator("#episode-text")).to_have_text("Episode 141 of 500")
    expect(page.locator('[data-metric="win_rate"]')).to_have_text("97.5%")

    # The README's picture of the live room (SPECTATOR_UPDATE_DOCS=1 refreshes docs/live-room.png).
    trainer.run(trainer.manager.send_frame(session.session_id, game_frame(5), "image/png", episode=141, step=57))
    for step in range(40, 58):
        value = 38 + 4 * math.sin(step / 3) + step / 20
        trainer.run(
            trainer.manager.send_bot_decision(
                session.session_id,
                {"left": 0.18, "right": 0.74, "noop": 0.08},
                state_values=value,
                q_values={"left": value - 3.5, "right": value, "noop": value - 5.8},
                selected_action="right",
                episode=141,
                step=step,
            )
        )
    expect(page.locator("#game-canvas")).to_have_attribute("data-frames", "1")
    expect(page.locator("#decision-meta")).to_have_text("episode 141 · step 57")
    path = shot(page)
    if os.environ.get("SPECTATOR_UPDATE_DOCS"):
        (ROOT / "docs").mkdir(exist_ok=True)
        shutil.copy(path, ROOT / "docs" / "live-room.png")


def test_frame_appears_on_the_canvas(new_page, make_room, trainer, shot):
    session = make_room(name="Frames run")
    page = new_page()
    open_live(page, session.room_code)
    canvas = page.locator("#game-canvas")
    expect(canvas).to_have_attribute("data-frames", "0")

    trainer.run(
        trainer.manager.send_frame(session.session_id, solid_png((220, 30, 40)), "image/png", episode=4, step=9)
    )
    expect(canvas).to_have_attribute("data-frames", "1")
    pixel = page.evaluate(
        """() => {
            const canvas = document.getElementById("game-canvas");
            return Array.from(canvas.getContext("2d").getImageData(canvas.width / 2, canvas.height / 2, 1, 1).data);
        }"""
    )
    assert pixel[:3] == [220, 30, 40], pixel
    expect(page.locator("#frame-meta")).to_have_text("Episode 4 · step 9")
    expect(page.locator("#game-empty")).to_be_hidden()
    shot(page)


def test_decision_bars_change(new_page, make_room, trainer, shot):
    session = make_room(name="Decisions run")
    page = new_page()
    open_live(page, session.room_code)
    bars = page.locator("#action-bars .bar")

    def decide(probabilities, selected, value):
        trainer.run(
            trainer.manager.send_bot_decision(
                session.session_id,
                probabilities,
                state_values=value,
                q_values={name: p * 10 for name, p in probabilities.items()},
                selected_action=selected,
            )
        )

    decide({"left": 0.2, "right": 0.7, "noop": 0.1}, "right", 1.5)
    expect(bars).to_have_count(3)
    right = page.locator('#action-bars .bar[data-action="right"]')
    left = page.locator('#action-bars .bar[data-action="left"]')
    expect(right).to_have_class("bar is-chosen")
    expect(right).to_have_attribute("data-p", "0.7000")
    expect(right.locator(".bar-pct")).to_have_text("70.0%")

    decide({"left": 0.9, "right": 0.05, "noop": 0.05}, "left", 2.5)
    expect(left).to_have_class("bar is-chosen")
    expect(left).to_have_attribute("data-p", "0.9000")
    expect(right).to_have_class("bar")
    expect(page.locator("#state-value-now")).to_have_text("V(s) = 2.5")
    expect(page.locator("#q-values .q.is-best .q-label")).to_have_text("left")
    width = page.evaluate("document.querySelector('#action-bars .bar[data-action=left] .bar-fill').style.width")
    assert width == "90%"
    shot(page)


def test_kick_removes_a_viewer(new_page, make_room, shot):
    session = make_room(name="Moderated run")
    viewer = new_page()
    open_live(viewer, session.room_code)
    me = viewer.locator("#spectator-list .people-row", has_text="you")
    expect(me).to_be_visible()
    spectator_id = me.get_attribute("data-spectator-id")
    name = me.locator(".person-name").inner_text()

    owner = new_page("alice")
    open_live(owner, session.room_code)
    row = owner.locator(f'#spectator-list .people-row[data-spectator-id="{spectator_id}"]')
    expect(row).to_be_visible()
    row.get_by_role("button", name=f"Kick {name}").click()

    expect(viewer.locator("#screen-refused")).to_be_visible()
    expect(viewer.locator("#refused-title")).to_have_text("You were removed from this room")
    expect(row).to_have_count(0)
    expect(owner.locator("#viewer-count")).to_have_text("1")
    shot(viewer, "viewer")
    shot(owner, "owner")


def test_phone_viewport_renders_without_horizontal_scroll(new_page, make_room, trainer, shot):
    session = make_room(name="Phone run")
    trainer.run(trainer.manager.update_training_metrics_batch(session.session_id, history(60)))
    page = new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True, device_scale_factor=2)
    open_live(page, session.room_code)
    trainer.run(trainer.manager.send_frame(session.session_id, game_frame(3), "image/png", episode=60, step=3))
    trainer.run(
        trainer.manager.send_bot_decision(
            session.session_id, {"left": 0.3, "right": 0.7}, state_values=3.1, selected_action="right"
        )
    )
    expect(page.locator("#game-canvas")).to_have_attribute("data-frames", "1")
    expect(page.locator('.graph[data-graph-id="reward_progress"]')).to_have_attribute("data-points", "60")
    assert no_horizontal_scroll(page), "the live room scrolls sideways on a phone"
    shot(page, "room", full_page=True)

    page.goto("/")
    expect(page.locator("#join-code")).to_be_visible()
    assert no_horizontal_scroll(page), "the lobby scrolls sideways on a phone"
    shot(page, "lobby", full_page=True)


def test_user_text_is_escaped(new_page, make_room, trainer, ui_server, shot):
    attack = '<img src=x onerror="window.__xss=1">'
    session = make_room(name=f"Run {attack}", algorithm="<b>DQN</b>")
    trainer.run(
        trainer.manager.update_training_metrics(
            session.session_id,
            MetricsData(timestamp=time.time(), episode=1, current_reward=1.0, extra={"td/err: a-b": 0.5}),
        )
    )
    with ui_server.api("bob") as bob:
        response = bob.post(
            f"rooms/{session.room_code}/join/", json={"display_name": "<script>window.__xss=2</script>"}
        )
        assert response.status_code == 200, response.text
    page = new_page()
    open_live(page, session.room_code)
    trainer.run(trainer.manager.send_bot_decision(session.session_id, {"a": 0.5, "b": 0.5}, selected_action="<i>b</i>"))
    expect(page.locator("#room-title")).to_have_text(f"Run {attack}")
    expect(page.locator("#live-algorithm")).to_have_text("<b>DQN</b>")
    expect(page.locator("#spectator-list")).to_contain_text("<script>window.__xss=2</script>")
    expect(page.locator("#overlay-extra")).to_contain_text("td/err: a-b")
    expect(page.locator('.graph[data-graph-id="custom:td/err: a-b"] h2')).to_contain_text("td/err: a-b")
    expect(page.locator("#decisions")).to_have_attribute("data-decisions", "1")
    page.goto("/")
    expect(page.locator(f'.room-card[data-room-id="{session.session_id}"]')).to_contain_text(f"Run {attack}")
    assert page.evaluate("window.__xss") is None
    assert page.locator("img[src=x]").count() == 0
    shot(page)
