"""Synchronized replay on the comparison page: each run's recorded episode side by side under
one set of controls (play, pause, stop, seek, step, speed, loop, keyboard), panes aligned by
step index, a shorter episode holding its last step as "ended", and a run without recordings
saying so. The shared clock's transitions are checked through its module too."""

import re
import time

import pytest
from playwright.sync_api import expect

from tests.browser.support import history, solid_png
from tests.client.support import wait_for

pytestmark = pytest.mark.browser

LONG_EPISODE, LONG_STEPS = 50, 12
SHORT_EPISODE, SHORT_STEPS = 40, 7
T0 = time.time() - 600
PLAY_TIMEOUT = 15_000


def color(run: int, step: int) -> tuple[int, int, int]:
    return (20 * step + 10, 200 - 15 * step, 40 + 100 * run)


def record(trainer, session, *, run: int, episode: int, steps: int) -> None:
    """A run's history, and one episode as a trainer streams it: a frame and a decision a step."""
    manager = trainer.manager
    for step in range(steps):
        trainer.run(
            manager.send_frame(session.session_id, solid_png(color(run, step)), "image/png", episode=episode, step=step)
        )
    decisions = [
        {
            "action_probabilities": {"left": step / steps, "right": 1 - step / steps},
            "state_values": float(step + 100 * run),
            "selected_action": "left" if step % 2 else "right",
            "episode": episode,
            "step": step,
            "timestamp": T0 + step * 0.1,
        }
        for step in range(steps)
    ]
    trainer.run(manager.update_training_metrics_batch(session.session_id, history(100), decisions=decisions))

    def recorded():
        rows = trainer.run(manager.list_recorded_episodes(session.session_id))
        return any(r["episode"] == episode and (r["decisions"], r["frames"]) == (steps, steps) for r in rows)

    wait_for(recorded, timeout=20, interval=0.1, message="the recorded episode")


def pane(page, run: int):
    return page.locator(f'#comparison-replay .sync-pane[data-run="{run}"]')


def canvas_shows(page, run: int, rgb) -> None:
    page.wait_for_function(
        """([run, [r, g, b]]) => {
            const canvas = document.querySelector(`.sync-pane[data-run="${run}"] canvas`);
            const [pr, pg, pb] = canvas.getContext("2d").getImageData(canvas.width / 2, canvas.height / 2, 1, 1).data;
            return pr === r && pg === g && pb === b;
        }""",
        arg=[run, list(rgb)],
    )


def expect_pane(page, run: int, *, step: int, steps: int, status: str) -> None:
    p = pane(page, run)
    expect(p).to_have_attribute("data-step", str(step))
    expect(p).to_have_attribute("data-status", status)
    expect(p.locator(".sync-step")).to_have_text(f"{step} / {steps - 1}")
    expect(p.locator(".sync-decision-meta")).to_have_text(f"decision at step {step}")
    expect(p.locator(".sync-frame-meta")).to_have_text(re.compile(rf"step {step}$"))
    canvas_shows(page, run, color(run, step))


def expect_clock(page, **fields) -> None:
    page.wait_for_function(
        """(fields) => {
            const player = window.spectatorComparison.replay.player;
            return Object.entries(fields).every(([key, value]) => player.state[key] === value);
        }""",
        arg=fields,
    )


def test_two_runs_replay_side_by_side_in_lock_step(new_page, make_room, trainer, shot):
    name = '<img src=x onerror="window.__xss=1">Long'
    long_run, short_run, bare_run = make_room(name=name), make_room(name="Short"), make_room(name="Unrecorded")
    record(trainer, long_run, run=0, episode=LONG_EPISODE, steps=LONG_STEPS)
    record(trainer, short_run, run=1, episode=SHORT_EPISODE, steps=SHORT_STEPS)
    trainer.run(trainer.manager.update_training_metrics_batch(bare_run.session_id, history(100)))
    page = new_page("alice", viewport={"width": 1440, "height": 1400})
    page.goto("/compare/?sessions=" + ",".join(s.training_session_id for s in (long_run, short_run, bare_run)))
    expect(page.locator("#compare-page")).to_have_attribute("data-state", "ready")
    stage = page.locator("#comparison-replay-stage")
    expect(stage).to_have_attribute("data-listed", "1", timeout=10_000)
    expect(pane(page, 0).locator(".run-name")).to_have_text(name)
    assert page.evaluate("window.__xss") is None
    expect(pane(page, 0).locator(".sync-recorded")).to_have_text(f"Recorded: {LONG_EPISODE}")
    expect(pane(page, 2)).to_have_attribute("data-state", "none")
    expect(pane(page, 2).locator(".sync-note")).to_have_text("This run has no recorded episodes: nothing to replay.")
    expect(page.locator("#sync-play")).to_be_disabled()

    # A click on a graph picks an episode; each run shows its recording of it or the nearest.
    box = page.locator('.compare-graph[data-metric="current_reward"] .u-over').bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    expect(stage).to_have_attribute("data-state", "ready", timeout=10_000)
    picked = int(page.locator("#comparison-replay").get_attribute("data-episode"))
    assert picked != SHORT_EPISODE
    expect(pane(page, 0)).to_have_attribute("data-episode", str(LONG_EPISODE))
    expect(pane(page, 1)).to_have_attribute("data-episode", str(SHORT_EPISODE))
    expect(pane(page, 1)).to_have_attribute("data-nearest", "1")
    expect(pane(page, 1).locator(".sync-note")).to_have_text(
        f"Episode {picked} is not recorded here: showing the nearest recorded, episode {SHORT_EPISODE}."
    )
    expect(page.locator(".sync-align")).to_contain_text("line up by step from each episode's start")
    controls = page.locator("#sync-controls")
    expect(controls).to_have_attribute("data-status", "stopped")
    expect_clock(page, status="stopped", position=0, length=LONG_STEPS, speed=1)
    expect_pane(page, 0, step=0, steps=LONG_STEPS, status="stopped")
    expect_pane(page, 1, step=0, steps=SHORT_STEPS, status="stopped")
    expect(pane(page, 2)).to_have_attribute("data-status", "")

    # One step: both panes move, frames and decisions with them.
    page.click("#sync-step-forward")
    expect_clock(page, status="paused", position=1)
    expect_pane(page, 0, step=1, steps=LONG_STEPS, status="paused")
    expect_pane(page, 1, step=1, steps=SHORT_STEPS, status="paused")
    expect(pane(page, 0).locator('.bar[data-action="left"]')).to_have_class("bar is-chosen")
    expect(pane(page, 1).locator(".sync-value")).to_have_text("V(s) = 101")
    page.click("#sync-step-back")
    expect_clock(page, status="paused", position=0)
    page.click("#sync-step-back")  # the first step is a bound
    expect_clock(page, status="paused", position=0)

    # The end of the shorter episode: it holds there, ended, while the longer goes on.
    page.locator("#sync-seek").fill(str(SHORT_STEPS - 1))
    expect_clock(page, status="paused", position=SHORT_STEPS - 1)
    expect_pane(page, 1, step=SHORT_STEPS - 1, steps=SHORT_STEPS, status="ended")
    expect_pane(page, 0, step=SHORT_STEPS - 1, steps=LONG_STEPS, status="paused")
    page.click("#sync-step-forward")
    expect_pane(page, 0, step=SHORT_STEPS, steps=LONG_STEPS, status="paused")
    expect_pane(page, 1, step=SHORT_STEPS - 1, steps=SHORT_STEPS, status="ended")
    shot(page, "shorter-ended", full_page=True)

    # By keyboard, from the controls: arrows step, space plays and pauses.
    controls.focus()
    page.keyboard.press("ArrowLeft")
    expect_clock(page, position=SHORT_STEPS - 1)
    page.keyboard.press("ArrowRight")
    expect_clock(page, position=SHORT_STEPS)
    page.select_option("#sync-speed", "0.1")  # a second a step
    expect_clock(page, speed=0.1)
    expect(page.locator("#sync-status")).to_contain_text("0.1×")
    controls.focus()
    page.keyboard.press(" ")
    expect_clock(page, status="playing")
    expect(page.locator("#sync-play")).to_have_attribute("aria-label", "Pause")
    expect(pane(page, 0)).to_have_attribute("data-status", "playing")
    page.wait_for_function(
        "(from) => window.spectatorComparison.replay.player.state.position > from",
        arg=SHORT_STEPS,
        timeout=PLAY_TIMEOUT,
    )
    page.keyboard.press(" ")
    expect_clock(page, status="paused")
    held = page.evaluate("window.spectatorComparison.replay.player.state.position")
    assert SHORT_STEPS < held < LONG_STEPS - 1
    expect_pane(page, 0, step=held, steps=LONG_STEPS, status="paused")
    expect(pane(page, 1)).to_have_attribute("data-status", "ended")

    # Fast to the end: every pane ended, the longer one at its last step.
    page.select_option("#sync-speed", "10")
    page.click("#sync-play")
    expect_clock(page, status="ended", position=LONG_STEPS - 1, speed=10)
    expect_pane(page, 0, step=LONG_STEPS - 1, steps=LONG_STEPS, status="ended")
    expect_pane(page, 1, step=SHORT_STEPS - 1, steps=SHORT_STEPS, status="ended")

    # Loop: playing goes on past the end (back to the first step) until paused.
    page.check("#sync-loop")
    expect_clock(page, loop=True, status="ended")
    page.evaluate(
        """() => {
            const player = window.spectatorComparison.replay.player;
            window.__wrapped = false;
            const render = player.render.bind(player);
            let last = player.state.position;
            player.render = () => {
                if (player.state.position < last && player.state.status === "playing") window.__wrapped = true;
                last = player.state.position;
                render();
            };
        }"""
    )
    page.click("#sync-play")
    page.wait_for_function("() => window.__wrapped === true", timeout=PLAY_TIMEOUT)
    page.click("#sync-play")
    expect_clock(page, status="paused", loop=True)
    page.click("#sync-stop")
    expect_clock(page, status="stopped", position=0)
    expect_pane(page, 0, step=0, steps=LONG_STEPS, status="stopped")
    expect_pane(page, 1, step=0, steps=SHORT_STEPS, status="stopped")

    # A run's own episode field loads that run again; the clock starts over, stopped.
    page.click("#sync-step-forward")
    pane(page, 1).locator("input[type=number]").fill(str(SHORT_EPISODE))
    pane(page, 1).locator("button[type=submit]").click()
    expect_clock(page, status="stopped", position=0)
    expect(pane(page, 1)).to_have_attribute("data-nearest", "")
    expect(pane(page, 1).locator(".sync-note")).to_have_text(f"Episode {SHORT_EPISODE}")
    shot(page, "stopped", full_page=True)


CLOCK_TRANSITIONS = """async () => {
    const c = await import("/static/spectator/sync_replay.js");
    const fails = (fn) => { try { fn(); return null; } catch (error) { return error.field; } };
    const pick = ({status, position}) => `${status}@${position}`;
    const out = {};
    let s = c.initialState();
    out.needsEpisode = [fails(() => c.play(s)), fails(() => c.stepBy(s, 1)), fails(() => c.seek(s, 0))];
    s = c.select(s, "e", 5);
    out.selected = pick(s);
    out.play = pick(c.play(s));
    out.pauseStopped = pick(c.pause(s));
    out.seekStopped = pick(c.seek(s, 3));
    out.seekPlaying = pick(c.seek(c.play(s), 3));
    out.seekBounds = [fails(() => c.seek(s, 5)), fails(() => c.seek(s, -1)), fails(() => c.seek(s, 1.5))];
    out.stepBounds = [pick(c.stepBy(s, -3)), pick(c.stepBy(s, 99))];
    out.stepInvalid = [fails(() => c.stepBy(s, 0)), fails(() => c.stepBy(s, 100001))];
    const speed = (x) => fails(() => c.withSpeed(s, x));
    out.speed = [c.withSpeed(s, 0.1).speed, c.withSpeed(s, 10).speed, speed(0.09), speed(10.5), speed(NaN)];
    out.loopInvalid = fails(() => c.withLoop(s, "yes"));
    let playing = c.seek(c.play(s), 4);
    const ended = c.advance(playing);
    out.ended = pick(ended);
    out.replayFromEnd = pick(c.play(ended));
    out.seekEnded = pick(c.seek(ended, 1));
    out.looped = pick(c.advance(c.withLoop(playing, true)));
    out.advancePaused = pick(c.advance(c.pause(playing)));
    out.resume = pick(c.play(c.pause(c.seek(c.play(s), 2))));
    out.stop = pick(c.stop(playing));
    out.panes = [c.paneView(c.seek(s, 2), 3), c.paneView(c.seek(s, 1), 3), c.paneView(ended, 5), c.paneView(s, 0)];
    out.apply = [pick(c.apply(s, "step_forward")), fails(() => c.apply(s, "jump"))];
    return out;
}"""


def test_the_shared_clock_mirrors_the_replay_state_machine(new_page, make_room, trainer):
    first, second = make_room(name="A"), make_room(name="B")
    page = new_page("alice")
    page.goto(f"/compare/?sessions={first.training_session_id},{second.training_session_id}")
    expect(page.locator("#comparison-replay-stage")).to_have_attribute("data-listed", "1", timeout=10_000)
    # Neither run recorded anything: the panes say so and the controls stay off.
    expect(page.locator(".sync-pane[data-state=none]")).to_have_count(2)
    expect(page.locator("#sync-play")).to_be_disabled()
    out = page.evaluate(CLOCK_TRANSITIONS)
    assert out == {
        "needsEpisode": ["episode", "episode", "episode"],
        "selected": "stopped@0",
        "play": "playing@0",
        "pauseStopped": "stopped@0",
        "seekStopped": "paused@3",
        "seekPlaying": "playing@3",
        "seekBounds": ["step", "step", "step"],
        "stepBounds": ["paused@0", "paused@4"],
        "stepInvalid": ["delta", "delta"],
        "speed": [0.1, 10, "speed", "speed", "speed"],
        "loopInvalid": "loop",
        "ended": "ended@4",
        "replayFromEnd": "playing@0",
        "seekEnded": "paused@1",
        "looped": "playing@0",
        "advancePaused": "paused@4",
        "resume": "playing@2",
        "stop": "stopped@0",
        "panes": [
            {"position": 2, "status": "ended"},
            {"position": 1, "status": "paused"},
            {"position": 4, "status": "ended"},
            {"position": None, "status": "empty"},
        ],
        "apply": ["paused@1", "action"],
    }
