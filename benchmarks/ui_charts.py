"""Chart library benchmark: streaming one point into a line chart and redrawing, in headless Chromium.

    .venv/bin/python benchmarks/ui_charts.py        # needs `npm ci` (./test runs it) and /usr/bin/chromium

The browser UI draws each graph with a chart library and appends every metric point as it
arrives. This measures, for uPlot (what the UI uses) and Chart.js (the common alternative,
configured for speed: no animation, no parsing, min-max decimation, no point markers), with
3 series of 1k, 10k and 100k points in an 800x240 canvas:

- first draw: building the chart with all the points;
- append + redraw: drop the oldest point, add one, redraw, and read a pixel back (so the
  canvas is really rasterized, not just recorded), averaged over many updates;
- heap: JavaScript heap held by the chart with its data (after a forced GC).

Both libraries are loaded from node_modules (installed from package-lock.json), served to
the page through Playwright's request routing: no server, no network.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.results import write_section  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
SIZES = (1_000, 10_000, 100_000)
UPDATES = {1_000: 300, 10_000: 200, 100_000: 60}
ORIGIN = "http://bench.invalid"
FILES = {
    "/uPlot.esm.js": ROOT / "node_modules/uplot/dist/uPlot.esm.js",
    "/uPlot.min.css": ROOT / "node_modules/uplot/dist/uPlot.min.css",
    "/chart.umd.min.js": ROOT / "node_modules/chart.js/dist/chart.umd.min.js",
}

PAGE = """<!doctype html><html><head><link rel="stylesheet" href="/uPlot.min.css">
<script src="/chart.umd.min.js"></script>
<script type="module">
import uPlot from "/uPlot.esm.js";

const W = 800, H = 240, SERIES = 3, COLORS = ["red", "green", "blue"];
const value = (x) => Math.sin(x / 50) * 10 + x / 100;
const series = (n, offset) => Array.from({length: n}, (_, i) => value(i + offset));
function makeData(n) {
  const xs = Array.from({length: n}, (_, i) => i);
  return [xs, ...Array.from({length: SERIES}, (_, s) => series(n, s * 7))];
}
const flush = (canvas) => canvas.getContext("2d").getImageData(0, 0, 1, 1);
const microtasks = () => new Promise((resolve) => setTimeout(resolve, 0));
function stats(times) {
  const sorted = [...times].sort((a, b) => a - b);
  const mean = times.reduce((a, b) => a + b, 0) / times.length;
  return {mean, p50: sorted[Math.floor(sorted.length * 0.5)], p95: sorted[Math.floor(sorted.length * 0.95)]};
}
function heap() {
  if (window.gc) window.gc();
  return performance.memory ? performance.memory.usedJSHeapSize : 0;
}

window.benchUPlot = async (n, updates) => {
  const host = document.createElement("div"); document.body.append(host);
  const before = heap();
  const data = makeData(n);
  let t0 = performance.now();
  const lines = Array.from({length: SERIES}, (_, i) => ({stroke: COLORS[i], points: {show: false}}));
  const u = new uPlot({width: W, height: H, scales: {x: {time: false}}, series: [{}, ...lines]}, data, host);
  await microtasks(); flush(u.ctx.canvas);
  const first = performance.now() - t0;
  const times = [];
  let next = n;
  for (let k = 0; k < updates; k++) {
    t0 = performance.now();
    data[0].shift(); data[0].push(next);
    for (let s = 1; s <= SERIES; s++) { data[s].shift(); data[s].push(value(next)); }
    next++;
    u.setData(data);
    await Promise.resolve(); flush(u.ctx.canvas);
    times.push(performance.now() - t0);
  }
  const grown = heap() - before;  // the chart and its data
  u.destroy(); host.remove();
  return {first, ...stats(times), heap: grown};
};

window.benchChartJs = async (n, updates) => {
  const canvas = document.createElement("canvas"); canvas.width = W; canvas.height = H;
  const host = document.createElement("div"); host.style.width = W + "px"; host.style.height = H + "px";
  host.append(canvas); document.body.append(host);
  const before = heap();
  const raw = makeData(n);
  const datasets = Array.from({length: SERIES}, (_, s) => ({
    data: raw[0].map((x, i) => ({x, y: raw[s + 1][i]})), borderColor: COLORS[s],
    borderWidth: 1, pointRadius: 0, tension: 0, spanGaps: true,
  }));
  let t0 = performance.now();
  const chart = new Chart(canvas, {type: "line", data: {datasets}, options: {
    animation: false, parsing: false, normalized: true, responsive: false, events: [],
    scales: {x: {type: "linear"}, y: {type: "linear"}},
    plugins: {legend: {display: false}, tooltip: {enabled: false}, decimation: {enabled: true, algorithm: "min-max"}},
  }});
  flush(canvas);
  const first = performance.now() - t0;
  const times = [];
  let next = n;
  for (let k = 0; k < updates; k++) {
    t0 = performance.now();
    for (const dataset of datasets) { dataset.data.shift(); dataset.data.push({x: next, y: value(next)}); }
    next++;
    chart.update("none");
    flush(canvas);
    times.push(performance.now() - t0);
  }
  const grown = heap() - before;
  chart.destroy(); host.remove();
  return {first, ...stats(times), heap: grown};
};
window.benchReady = true;
</script></head><body></body></html>"""


def serve(route) -> None:
    path = route.request.url.removeprefix(ORIGIN).split("?")[0]
    if path == "/":
        route.fulfill(status=200, content_type="text/html", body=PAGE)
    elif path in FILES:
        kind = "text/css" if path.endswith(".css") else "text/javascript"
        route.fulfill(status=200, content_type=kind, body=FILES[path].read_bytes())
    else:
        route.fulfill(status=404, body="")


def run() -> list[dict]:
    from playwright.sync_api import sync_playwright

    missing = [str(path) for path in FILES.values() if not path.exists()]
    if missing:
        raise SystemExit(f"missing {missing}: run `npm ci` first (./test and ./run do)")
    rows = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=[*LAUNCH_ARGS, "--enable-precise-memory-info", "--js-flags=--expose-gc"]
        )
        page = browser.new_page(viewport={"width": 1000, "height": 800})
        page.route(f"{ORIGIN}/**", serve)
        page.goto(f"{ORIGIN}/")
        page.wait_for_function("window.benchReady === true")
        version = browser.version
        for size in SIZES:
            for library, function in (("uPlot 1.6.32", "benchUPlot"), ("Chart.js 4.6.1", "benchChartJs")):
                page.evaluate(f"{function}(1000, 20)")  # warm up the JIT
                result = page.evaluate(f"{function}({size}, {UPDATES[size]})")
                rows.append({"library": library, "points": size, **result})
                print(
                    f"{library:15} {size:>7} pts: first draw {result['first']:7.1f} ms, append+redraw "
                    f"mean {result['mean']:6.2f} ms p95 {result['p95']:6.2f} ms, heap +{result['heap'] / 1e6:5.1f} MB"
                )
        browser.close()
    return rows, version


def main() -> None:
    rows, version = run()
    lines = [
        f"Headless Chromium {version} (software rendering), one 800x240 line chart with 3 series.",
        '"append + redraw": drop the oldest point, add one, redraw, read a pixel back (the canvas is',
        "rasterized), mean and p95 over 60-300 updates. Chart.js is configured for speed (no animation,",
        "no parsing, min-max decimation, no point markers).",
        "",
        "| library | points per series | first draw ms | append + redraw mean ms | p95 ms | updates/s at most "
        "| JS heap (chart + data) MB |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        lines.append(
            f"| {row['library']} | {row['points']:,} | {row['first']:.1f} | {row['mean']:.2f} | {row['p95']:.2f} "
            f"| {1000 / row['mean']:,.0f} | {row['heap'] / 1e6:.1f} |"
        )
    by = {(row["library"].split()[0], row["points"]): row for row in rows}
    ratios = [
        f"{size:,} points: uPlot {by[('Chart.js', size)]['mean'] / by[('uPlot', size)]['mean']:.1f}x faster per update"
        for size in SIZES
    ]
    lines += ["", "; ".join(ratios) + ".", "", "Run: `.venv/bin/python benchmarks/ui_charts.py`."]
    write_section("UI charts", "\n".join(lines))


if __name__ == "__main__":
    main()
