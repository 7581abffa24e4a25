"""A run of a million metric points in the browser: the room's "Whole run" and the comparison
page fetch it downsampled on the server (a few thousand points, not a million), zooming in
fetches the range shown, and the page never blocks for long.

The only module that stores a million points: they go straight into the server's SQLite
table in one ``INSERT … SELECT`` (about 3 s; the ingest path takes 20 s for as many).
"""

import time
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect

from tests.browser.support import expect_live, history
from tests.support.servers import manage

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]

POINTS = 1_000_000
SPACING = 0.01  # seconds between two points: the run spans 10,000 s
# The history API's answer for a whole run is drawn from at most this many points a curve
# (two a pixel column of the widest chart), whatever the run's size.
MAX_POINTS_A_CURVE = 4000

SEED = """
from django.db import connection, transaction
with transaction.atomic(), connection.cursor() as cursor:
    cursor.execute('''
        WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < %s)
        INSERT INTO metrics_metricpoint (training_session_id, stream, seq, timestamp, episode, current_reward,
            win_rate, episode_length, loss_value, algorithm, extra, received_at)
        SELECT %s, 'seed', i, %s + i * %s, i, i / 10000.0 + ((i * 7919) %% 1000) / 50.0,
            (i %% 100) / 100.0, 100 + i %% 37, 1.0 / (1 + i / 1000.0), 'PPO', '{{}}', '2025-01-01 00:00:00'
        FROM n
    ''', [{last}, {session_id!r}, {start}, {spacing}])
"""

# Every long task (the main thread busy over 50 ms) the page runs, from its first script on.
LONG_TASKS = """
window.longTasks = [];
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) window.longTasks.push(entry.duration);
}).observe({ type: "longtask", buffered: true });
"""


@pytest.fixture(scope="module")
def big_run(trainer, ui_server):
    """alice's public room on a run of a million points, the last one a moment ago."""
    session_id = f"million-{int(time.time())}"
    session = trainer.run(
        trainer.manager.create_spectator_session(session_id, name="A million points", algorithm="PPO")
    )
    start = time.time() - POINTS * SPACING
    script = SEED.format(last=POINTS - 1, session_id=session_id, start=start, spacing=SPACING)
    manage(ui_server.process.env, "shell", "-c", script)
    return session


def x_span(page, graph_id: str) -> float:
    return page.evaluate(
        "(id) => { const x = window.spectatorRoom.graphs.graphs.get(id).chart.scales.x; return x.max - x.min; }",
        graph_id,
    )


def test_a_million_points_chart_downsampled_in_the_room(new_page, big_run, shot):
    page = new_page()
    page.add_init_script(LONG_TASKS)
    page.goto(f"/r/{big_run.room_code}/")
    expect_live(page, timeout=15_000)  # the database was just filled: its pages may be cold
    reward = page.locator('.graph[data-graph-id="reward_progress"]')
    expect(reward).to_have_attribute("data-points", "500")  # the snapshot's recent points
    assert page.evaluate("PerformanceObserver.supportedEntryTypes.includes('longtask')")
    page.evaluate("window.longTasks = []")

    page.click('label[for="graphs-history-whole"]')
    toolbar = page.locator("#graphs-history")
    expect(toolbar).to_have_attribute("data-history", "loaded", timeout=30_000)
    assert int(toolbar.get_attribute("data-count")) == POINTS
    asked = int(toolbar.get_attribute("data-points"))
    assert asked <= MAX_POINTS_A_CURVE
    # Four curves have points (reward, win rate, episode length, loss): each downsampled.
    assert 0 < int(toolbar.get_attribute("data-received")) <= 4 * asked
    shown = int(reward.get_attribute("data-points"))
    assert 500 < shown <= asked + 500
    assert x_span(page, "reward_progress") > 0.99 * POINTS * SPACING
    expect(toolbar).to_contain_text("Whole run: 1,000,000 points")
    long_tasks = page.evaluate("window.longTasks")
    assert max(long_tasks, default=0) < 500, f"the main thread blocked: {long_tasks} ms"
    shot(page, "whole-run")

    # Zoom into a tenth of the run: that range is fetched again at the chart's resolution.
    box = reward.locator(".u-over").bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.40, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.50, y, steps=5)
    page.mouse.up()
    expect(reward).to_have_attribute("data-detail", "loaded", timeout=15_000)
    in_range = int(reward.get_attribute("data-detail-count"))
    assert 0.05 * POINTS < in_range < 0.15 * POINTS
    assert int(reward.get_attribute("data-detail-received")) <= MAX_POINTS_A_CURVE
    assert x_span(page, "reward_progress") < 0.15 * POINTS * SPACING
    assert max(page.evaluate("window.longTasks"), default=0) < 500
    shot(page, "zoomed")

    # "Only the range shown" asks the export for the zoomed time range.
    page.check("[data-export-range]")
    with page.expect_download() as download_info:
        page.click('.exports a[data-export="ndjson"]')
    download = download_info.value
    query = parse_qs(urlsplit(download.url).query)
    time_from, time_to = float(query["time_from"][0]), float(query["time_to"][0])
    assert 0.05 * POINTS * SPACING < time_to - time_from < 0.15 * POINTS * SPACING
    download.cancel()

    # Back to the live window: the recent points only.
    page.click('label[for="graphs-history-recent"]')
    expect(toolbar).to_have_attribute("data-history", "recent")
    expect(reward).to_have_attribute("data-points", "500")


def test_a_million_point_run_in_a_comparison(new_page, big_run, make_room, trainer, shot):
    small = make_room(name="A short run")
    trainer.run(trainer.manager.update_training_metrics_batch(small.session_id, history(120)))
    page = new_page("alice")
    page.add_init_script(LONG_TASKS)
    page.goto(f"/compare/?sessions={big_run.training_session_id},{small.training_session_id}")
    expect(page.locator("#compare-page")).to_have_attribute("data-state", "ready", timeout=30_000)
    reward = page.locator('.compare-graph[data-metric="current_reward"]')
    big_points = int(reward.locator('.compare-legend-item[data-run="0"]').get_attribute("data-points"))
    assert 100 < big_points <= MAX_POINTS_A_CURVE
    expect(reward.locator('.compare-legend-item[data-run="1"]')).to_have_attribute("data-points", "120")
    expect(page.locator("#compare-summary")).to_have_attribute("data-state", "loaded", timeout=15_000)
    expect(page.locator('#compare-summary tr[data-run="0"] [data-field="episodes"]')).to_contain_text("1,000,000")
    expect(page.locator("#compare-status")).to_contain_text("1,000,120 points stored")
    assert max(page.evaluate("window.longTasks"), default=0) < 500
    shot(page)
