"""The comparison page in a real browser: runs overlaid with a legend per run, the summary
table, the x axis switch (time since each run's start), zoom shared by every graph, a live
run gaining points while the page is open, the replay slot, and run names shown as text."""

import csv
import math
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect

from tests.browser.support import history

pytestmark = pytest.mark.browser

LIVE_POLL_TIMEOUT = 10_000  # the page polls live runs every 3 s


def open_comparison(page, *sessions) -> None:
    page.goto("/compare/?sessions=" + ",".join(session.training_session_id for session in sessions))
    expect(page.locator("#compare-page")).to_have_attribute("data-state", "ready")


def push(trainer, session, points) -> None:
    trainer.run(trainer.manager.update_training_metrics_batch(session.session_id, points))


def legend_item(page, metric: str, run: int):
    return page.locator(f'.compare-graph[data-metric="{metric}"] .compare-legend-item[data-run="{run}"]')


def x_scale(page, metric: str) -> list[float]:
    return page.evaluate(
        "(metric) => { const x = window.spectatorComparison.graphs.get(metric).chart.scales.x; "
        "return [x.min, x.max]; }",
        metric,
    )


def test_two_runs_overlaid_with_a_legend_per_run_and_a_summary(new_page, make_room, trainer, shot):
    first = make_room(name="DQN baseline", algorithm="DQN")
    second = make_room(name="PPO tuned", algorithm="PPO")
    first_points, second_points = history(60), history(90, algorithm="PPO")
    for p in first_points:
        p["current_reward"] *= 0.7
        p["win_rate"] *= 0.8
    push(trainer, first, first_points)
    push(trainer, second, second_points)
    page = new_page("alice", viewport={"width": 1440, "height": 1100})
    open_comparison(page, first, second)

    graphs = page.locator(".compare-graph")
    expect(graphs.first).to_be_visible()
    metrics = graphs.evaluate_all("(els) => els.map((el) => el.dataset.metric)")
    assert metrics[:5] == ["current_reward", "average_reward", "best_reward", "win_rate", "episode_length"]
    assert "extra.td_error" in metrics and "memory_usage_mb" not in metrics  # nobody reported memory
    for i in range(len(metrics)):
        items = graphs.nth(i).locator(".compare-legend-item")
        expect(items).to_have_count(2)
        expect(items.locator(".run-name")).to_have_text(["DQN baseline", "PPO tuned"])
    expect(legend_item(page, "current_reward", 0)).to_have_attribute("data-points", "60")
    expect(legend_item(page, "current_reward", 1)).to_have_attribute("data-points", "90")
    expect(page.locator('.compare-graph[data-metric="current_reward"] canvas')).to_have_count(1)

    summary = page.locator("#compare-summary")
    expect(summary).to_have_attribute("data-state", "loaded")
    rows = summary.locator("tbody tr")
    expect(rows).to_have_count(2)
    best = [max(p["current_reward"] for p in points) for points in (first_points, second_points)]
    expect(rows.nth(0).locator('[data-field="best_reward"]')).to_contain_text(f"{best[0]:,.2f}")
    expect(rows.nth(1).locator('[data-field="best_reward"]')).to_contain_text(f"{best[1]:,.2f}")
    expect(rows.nth(1).locator('[data-field="win_rate"]')).to_have_text(f"{second_points[-1]['win_rate'] * 100:.1f}%")
    expect(rows.nth(0).locator('[data-field="episodes"]')).to_contain_text("60")
    expect(rows.nth(1).locator('[data-field="status"]')).to_have_text("Running")
    # The later run climbs further: it leads on best reward.
    leader = 1 if best[1] > best[0] else 0
    expect(rows.nth(leader).locator('[data-field="best_reward"]')).to_have_class("num is-lead")
    shot(page, full_page=True)


def test_switching_to_time_lines_runs_up_from_their_start(new_page, make_room, trainer, shot):
    first, second = make_room(name="Early run"), make_room(name="Late run")
    push(trainer, first, history(30))  # points 2 s apart, first 60 s ago
    push(trainer, second, history(45))  # first 90 s ago
    page = new_page("alice")
    open_comparison(page, first, second)
    assert x_scale(page, "current_reward") == [1, 45]

    page.click('label[for="compare-axis-time"]')
    expect(page.locator("#compare-page")).to_have_attribute("data-axis", "time")
    expect(page.locator("#compare-page")).to_have_attribute("data-state", "ready")
    # Seconds since each run's own first point: both start at 0.
    starts = page.evaluate(
        "() => window.spectatorComparison.runs.map((run) => run.curves.get('current_reward').raw.xs[0])"
    )
    assert starts == [0, 0]
    low, high = x_scale(page, "current_reward")
    assert low == 0 and high == pytest.approx(88, abs=0.01)
    expect(legend_item(page, "current_reward", 1)).to_have_attribute("data-points", "45")
    shot(page)

    page.click('label[for="compare-axis-episode"]')
    expect(page.locator("#compare-page")).to_have_attribute("data-state", "ready")
    assert x_scale(page, "current_reward") == [1, 45]


def test_zoom_is_shared_and_whole_run_zooms_out(new_page, make_room, trainer):
    first, second = make_room(name="A"), make_room(name="B")
    push(trainer, first, history(200))
    push(trainer, second, history(150))
    page = new_page("alice")
    open_comparison(page, first, second)
    whole = page.locator("#compare-whole")
    expect(whole).to_be_disabled()

    box = page.locator('.compare-graph[data-metric="current_reward"] .u-over').bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.25, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.5, y, steps=5)
    page.mouse.up()
    expect(page.locator("#compare-page")).to_have_attribute("data-detail", "loaded")
    expect(whole).to_be_enabled()
    low, high = x_scale(page, "current_reward")
    assert 30 < low < high < 120
    assert x_scale(page, "win_rate") == [low, high]
    # The range fetched again holds every point in it, at its exact episode.
    xs = page.evaluate("() => window.spectatorComparison.runs[0].detail.curves.get('current_reward').raw.xs")
    assert xs == list(range(math.ceil(low), math.floor(high) + 1))

    # Downloads of the range shown: every point of it, no other.
    page.check("[data-export-range-all]")
    with page.expect_download() as download_info:
        page.locator('#compare-summary tr[data-run="0"] a[data-export="csv"]').click()
    download = download_info.value
    query = parse_qs(urlsplit(download.url).query)
    assert query == {"episode_from": [str(math.ceil(low))], "episode_to": [str(math.floor(high))]}
    with open(download.path(), newline="") as file:
        rows = list(csv.DictReader(file))
    assert [int(row["episode"]) for row in rows] == xs

    whole.click()
    expect(whole).to_be_disabled()
    assert x_scale(page, "current_reward") == [1, 200]
    with page.expect_download() as download_info:
        page.locator('#compare-summary tr[data-run="1"] a[data-export="json"]').click()
    assert urlsplit(download_info.value.url).query == ""
    assert page.evaluate("() => window.spectatorComparison.runs.every((run) => run.detail === null)")


def ema(values: list[float], alpha: float) -> list[float]:
    out, average = [], None
    for value in values:
        average = value if average is None else average + alpha * (value - average)
        out.append(average)
    return out


def smooth(page, weight: float) -> None:
    """Move the smoothing slider (TensorBoard's weight: the EMA's alpha is 1 - weight)."""
    page.evaluate(
        """(weight) => {
            const slider = document.querySelector("#compare-smooth");
            slider.value = String(weight);
            slider.dispatchEvent(new Event("input", { bubbles: true }));
        }""",
        weight,
    )
    expect(page.locator("#compare-smooth-value")).to_have_text(f"{weight:.2f}")
    expect(page.locator("#compare-page")).to_have_attribute("data-state", "ready")


def smoothed(page, run: int) -> list[float]:
    return page.evaluate("(run) => window.spectatorComparison.runs[run].curves.get('current_reward').smooth.ys", run)


def test_smoothing_draws_each_runs_ema_over_its_raw_line(new_page, make_room, trainer):
    first, second = make_room(name="A"), make_room(name="B")
    first_points, second_points = history(40), history(70)
    push(trainer, first, first_points)
    push(trainer, second, second_points)
    page = new_page("alice")
    open_comparison(page, first, second)
    assert page.evaluate("() => window.spectatorComparison.runs[0].curves.get('current_reward').smooth") is None

    smooth(page, 0.9)
    for run, points in enumerate((first_points, second_points)):
        assert smoothed(page, run) == pytest.approx(ema([p["current_reward"] for p in points], 0.1), rel=1e-9)
    # A raw line and a smoothed line a run, one legend entry a run.
    series = page.evaluate("() => window.spectatorComparison.graphs.get('current_reward').chart.series.length")
    assert series == 1 + 2 * 2
    expect(page.locator('.compare-graph[data-metric="current_reward"] .compare-legend-item')).to_have_count(2)


def test_a_live_run_gains_points_while_the_page_is_open(new_page, make_room, trainer, shot):
    first, second = make_room(name="Finished"), make_room(name="Still training")
    first_points, second_points = history(20), history(20)
    push(trainer, first, first_points)
    push(trainer, second, second_points)
    page = new_page("alice")
    open_comparison(page, first, second)
    expect(legend_item(page, "current_reward", 1)).to_have_attribute("data-points", "20")
    smooth(page, 0.8)

    more = history(3, start_episode=21)
    push(trainer, second, more)
    expect(legend_item(page, "current_reward", 1)).to_have_attribute("data-points", "23", timeout=LIVE_POLL_TIMEOUT)
    expect(legend_item(page, "win_rate", 1)).to_have_attribute("data-points", "23")
    expect(legend_item(page, "current_reward", 0)).to_have_attribute("data-points", "20")
    last = page.evaluate("() => window.spectatorComparison.runs[1].curves.get('current_reward').raw.xs.at(-1)")
    assert last == 23
    # The new points carry the run's average on rather than starting a new one.
    rewards = [p["current_reward"] for p in second_points + more]
    assert smoothed(page, 1) == pytest.approx(ema(rewards, 0.2), rel=1e-9)
    shot(page)


def test_picking_an_episode_reaches_the_replay_slot(new_page, make_room, trainer):
    first, second = make_room(name="A"), make_room(name="B")
    push(trainer, first, history(100))
    push(trainer, second, history(100))
    page = new_page("alice")
    open_comparison(page, first, second)
    page.evaluate(
        """() => window.spectatorComparison.replay.attach({
            mount(stage, runs) { stage.dataset.mounted = runs.map((run) => run.id).join(","); },
            showEpisode(episode) { window.shownEpisode = episode; },
        })"""
    )
    stage = page.locator("#comparison-replay-stage")
    expect(stage).to_have_attribute("data-mounted", f"{first.training_session_id},{second.training_session_id}")
    box = page.locator('.compare-graph[data-metric="current_reward"] .u-over').bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    panel = page.locator("#comparison-replay")
    expect(panel).to_have_attribute("data-episode", re.compile(r"^\d+$"))
    episode = int(panel.get_attribute("data-episode"))
    assert 45 <= episode <= 56 and page.evaluate("window.shownEpisode") == episode
    expect(page.locator("#comparison-replay-episode")).to_contain_text("picked")


def test_run_names_are_shown_as_text(new_page, make_room, trainer, shot):
    attack = '<img src=x onerror="window.__xss=1">'
    first, second = make_room(name=attack, algorithm="<b>PPO</b>"), make_room(name="Plain")
    push(trainer, first, history(5))
    push(trainer, second, history(5))
    page = new_page("alice")
    open_comparison(page, first, second)
    expect(legend_item(page, "current_reward", 0).locator(".run-name")).to_have_text(attack)
    expect(page.locator("#compare-summary tbody tr").first.locator(".run-name")).to_have_text(attack)
    expect(page.locator(".run-chip").first).to_contain_text("<b>PPO</b>")
    assert page.evaluate("window.__xss") is None
    assert page.locator("img[src=x]").count() == 0
    shot(page)


def test_my_rooms_page_picks_runs_to_compare(new_page, make_room, trainer):
    first, second = make_room(name="Pick me"), make_room(name="And me")
    push(trainer, first, history(5))
    push(trainer, second, history(5))
    page = new_page("alice")
    page.goto("/my/")
    for session in (first, second):
        page.check(f'input[name="sessions"][value="{session.training_session_id}"]')
    page.get_by_role("button", name="Compare selected runs").click()
    expect(page.locator("#compare-page")).to_have_attribute("data-state", "ready")
    # Newest first, as the page lists them.
    expect(page.locator(".run-chip .run-name")).to_have_text(["And me", "Pick me"])
