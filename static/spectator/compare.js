// The comparison page: two to four runs side by side. One uPlot graph per metric with one
// line per run on a shared x axis (the episode, or the time since each run's first point so
// runs started at different moments line up), a legend naming the runs, EMA smoothing, and
// the summary table (comparison API).
//
// Every curve comes from the history API, downsampled on the server (each bucket's min and
// max survive) to two points per pixel column: a run of a million points costs the browser a
// few thousand. Zooming (drag, or Ctrl/⌘ + wheel) fetches the range shown again at that
// resolution, so detail appears as you zoom in; "Whole run" or a double-click zooms out.
//
// Live runs keep updating by polling the history API for each live run's new tail every few
// seconds, not through the runs' room sockets: a comparison may hold runs without a room, or
// whose rooms the viewer never joined, and a socket per run would take a seat and list the
// viewer in up to four rooms' spectator lists; trends over minutes need no sub-second
// latency; and a tail is one indexed range query that comes back already downsampled when a
// fast trainer sent thousands of points since the last poll.
import uPlot from "../vendor/uplot/uPlot.esm.js";
import { api, errorMessage } from "./api.js";
import { $, h, readJson, setText } from "./dom.js";
import { wireExports } from "./exports.js";
import { duration, fixed, formatMetric, integer, isNum, percent, significant } from "./format.js";
import { continueEma, curveFrom, fetchSeries, lowerBound, overlayRange, pointsForWidth, spliceTail } from "./history.js";

// One colour a run, the same as .run-color-N in app.css.
const RUN_COLORS = ["#5b9cff", "#f5a524", "#3ecf8e", "#f0506e"];
const LIVE_STATUSES = new Set(["running", "paused"]);
const EXTRA_PREFIX = "extra.";
// The seed metrics a comparison can graph, in this order; custom scalars follow.
const METRICS = [
  ["current_reward", "Reward"],
  ["average_reward", "Average reward"],
  ["best_reward", "Best reward"],
  ["win_rate", "Win rate"],
  ["episode_length", "Episode length"],
  ["loss_value", "Loss"],
  ["learning_rate", "Learning rate"],
  ["epsilon", "Epsilon"],
  ["actions_per_second", "Actions / s"],
  ["frames_per_second", "Frames / s"],
  ["memory_usage_mb", "Memory (MB)"],
];
const LOG_SCALE = { loss_value: false, learning_rate: true };
const SUMMARY_EVERY_POLLS = 5;
// A curve grown by live tails past this many times its share of points is fetched again, downsampled.
const REFETCH_GROWTH = 3;
const DETAIL_DELAY_MS = 200;
const SMOOTH_DELAY_MS = 250;
const EMPTY = { xs: [], ys: [] };
// Tick steps: whole episodes; on the time axis, round seconds, minutes, hours and days.
const EPISODE_INCRS = [1, 2, 5].flatMap((m) => Array.from({ length: 13 }, (_, k) => m * 10 ** k)).sort((a, b) => a - b);
const TIME_INCRS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800, 2592000];

function cssVar(name, fallback) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
}

function formatX(axis, value) {
  if (!isNum(value)) return "";
  return axis === "time" ? duration(value) : integer(value);
}

/** The y of the point nearest ``x`` (null for an empty curve). */
function nearestValue(curve, x) {
  const { xs, ys } = curve;
  if (!xs.length) return null;
  const i = lowerBound(xs, x);
  if (i <= 0) return ys[0];
  if (i >= xs.length) return ys[xs.length - 1];
  return x - xs[i - 1] <= xs[i] - x ? ys[i - 1] : ys[i];
}

/** The y of the last point before ``x``, or null. */
function valueBefore(curve, x) {
  const i = lowerBound(curve.xs, x) - 1;
  return i >= 0 ? curve.ys[i] : null;
}

function lastValue(curve) {
  for (let i = curve.ys.length - 1; i >= 0; i -= 1) if (curve.ys[i] != null) return curve.ys[i];
  return null;
}

class Run {
  constructor(data, index) {
    this.index = index;
    this.id = data.id;
    this.label = data.label;
    this.historyUrl = data.history_url;
    this.summaryUrl = data.summary_url;
    this.status = data.status;
    this.extraKeys = data.extra_keys || [];
    this.color = RUN_COLORS[index % RUN_COLORS.length];
    this.visible = true;
    this.startedAt = null; // the first point's timestamp: 0 s on the time axis
    this.lastX = null; // the last x fetched, as the server counts it (episode or timestamp)
    this.count = 0; // points stored, as the last whole fetch counted them
    this.curves = new Map(); // metric -> {raw, smooth}: the whole run, on the page's axis
    this.detail = null; // {lo, hi, curves}: a zoomed range fetched at the chart's resolution
  }

  get live() {
    return LIVE_STATUSES.has(this.status);
  }

  metrics() {
    return [...METRICS.map(([name]) => name), ...this.extraKeys.map((key) => `${EXTRA_PREFIX}${key}`)];
  }

  metricsWithData() {
    return [...this.curves].filter(([, curves]) => curves.raw.xs.length).map(([name]) => name);
  }

  /** What the page's x is from the server's: episodes as they are, timestamps from the run's start. */
  shift(axis) {
    return axis === "time" ? this.startedAt || 0 : 0;
  }

  /** The run's curves of ``metric`` as drawn: the whole run, a zoomed range's detail inside it. */
  shown(metric) {
    const whole = this.curves.get(metric);
    if (!whole) return null;
    const detail = this.detail && this.detail.curves.get(metric);
    if (!detail) return whole;
    const { lo, hi } = this.detail;
    return {
      raw: overlayRange(whole.raw, detail.raw, lo, hi),
      smooth: whole.smooth && detail.smooth ? overlayRange(whole.smooth, detail.smooth, lo, hi) : whole.smooth,
    };
  }
}

class CompareGraph {
  constructor(comparison, { name, title, custom }) {
    this.comparison = comparison;
    this.metric = name;
    this.title = title;
    this.custom = custom;
    this.log = Boolean(LOG_SCALE[name]);
    this.chart = null;
    this.layout = "";
    this.shownCurves = [];
    this.build();
  }

  build() {
    const slug = this.metric.replace(/[^A-Za-z0-9_-]/g, "-");
    this.cursorEl = h("span", { class: "muted small mono compare-cursor", "aria-hidden": "true" });
    const controls = h("div", { class: "graph-controls" });
    if (this.metric in LOG_SCALE) {
      const id = `compare-log-${slug}`;
      const toggle = h("input", { type: "checkbox", id, checked: this.log });
      toggle.addEventListener("change", () => {
        this.log = toggle.checked;
        this.render();
      });
      controls.append(h("span", { class: "graph-control graph-check" }, toggle, h("label", { for: id }, "Log scale")));
    }
    this.legendItems = this.comparison.runs.map((run) => {
      const value = h("span", { class: "compare-legend-value mono" }, "—");
      const button = h("button", { type: "button", class: "compare-legend-toggle", "aria-pressed": "true", title: `Show or hide ${run.label}` },
        h("span", { class: `run-swatch run-color-${run.index}`, "aria-hidden": "true" }),
        h("span", { class: "run-name" }, run.label));
      button.addEventListener("click", () => this.comparison.toggleRun(run));
      const item = h("li", { class: "compare-legend-item", dataset: { run: String(run.index), points: "0" } }, button, value);
      item.valueEl = value;
      item.button = button;
      return item;
    });
    this.plotEl = h("div", { class: "graph-plot" });
    this.el = h("article", { class: "card graph compare-graph", dataset: { metric: this.metric, points: "0" } },
      h("div", { class: "card-head" },
        h("h2", {}, this.title, this.custom ? h("span", { class: "badge badge-soft" }, "custom") : null),
        this.cursorEl),
      controls,
      h("div", { class: "graph-body" }, this.plotEl),
      h("ul", { class: "compare-legend", "aria-label": `Runs on ${this.title}` }, this.legendItems),
      h("p", { class: "graph-hint muted small" }, "Drag to zoom · Ctrl + wheel to zoom · double-click for the whole run"));
  }

  seriesSpec(smoothing) {
    const series = [];
    for (const run of this.comparison.runs) {
      const common = { spanGaps: true, points: { show: false }, show: run.visible };
      series.push({ ...common, label: run.label, stroke: smoothing ? `${run.color}40` : run.color, width: smoothing ? 1 : 1.6 });
      if (smoothing) series.push({ ...common, label: `${run.label} (smoothed)`, stroke: run.color, width: 2 });
    }
    return series;
  }

  options(width, smoothing) {
    const comparison = this.comparison;
    const axis = comparison.axis;
    const stroke = cssVar("--chart-axis", "#8b93a7");
    const grid = cssVar("--chart-grid", "rgba(139,147,167,0.15)");
    const style = { stroke, font: "11px system-ui, sans-serif", grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
    const graph = this;
    return {
      width,
      height: comparison.height(),
      legend: { show: false },
      cursor: { drag: { x: true, y: false, setScale: true }, sync: { key: "spectator-compare" }, points: { size: 5 } },
      scales: { x: { time: false }, y: this.log ? { distr: 3, log: 10 } : { auto: true } },
      axes: [
        { ...style, space: 70, incrs: axis === "time" ? TIME_INCRS : EPISODE_INCRS, values: (u, splits) => splits.map((v) => formatX(axis, v)) },
        { ...style, size: 56, values: (u, splits) => splits.map((v) => (v == null ? "" : significant(v, 3))) },
      ],
      series: [{}, ...this.seriesSpec(smoothing)],
      hooks: {
        // A drag's selection (also the ones uPlot's cursor sync replays on the other graphs).
        setSelect: [(u) => {
          if (u.select.width > 0) comparison.zoomTo(u.posToVal(u.select.left, "x"), u.posToVal(u.select.left + u.select.width, "x"));
        }],
        setCursor: [(u) => graph.showCursor(u)],
        ready: [(u) => graph.wire(u)],
      },
    };
  }

  wire(u) {
    const comparison = this.comparison;
    u.over.addEventListener("dblclick", () => comparison.resetZoom());
    u.over.addEventListener("wheel", (event) => this.wheelZoom(u, event), { passive: false });
    // A click (not a drag) on the episode axis picks that episode for the replay panel.
    let downAt = null;
    u.over.addEventListener("mousedown", (event) => { downAt = event.clientX; });
    u.over.addEventListener("click", (event) => {
      if (downAt == null || Math.abs(event.clientX - downAt) > 3 || comparison.axis !== "episode") return;
      const left = u.cursor.left;
      if (left == null || left < 0) return;
      comparison.replay.select(Math.round(u.posToVal(left, "x")));
    });
  }

  wheelZoom(u, event) {
    // A plain wheel scrolls the page; Ctrl/⌘ + wheel (and a trackpad pinch) zooms.
    if (!(event.ctrlKey || event.metaKey)) return;
    event.preventDefault();
    const left = u.cursor.left;
    if (left == null || left < 0) return;
    const [first, last] = this.comparison.extent();
    if (first == null) return;
    const at = u.posToVal(left, "x");
    const { min, max } = u.scales.x;
    const factor = event.deltaY < 0 ? 0.8 : 1.25;
    this.comparison.zoomTo(Math.max(first, at - (at - min) * factor), Math.min(last, at + (max - at) * factor));
  }

  forScale(ys) {
    return this.log ? ys.map((v) => (v != null && v > 0 ? v : undefined)) : ys;
  }

  render() {
    const comparison = this.comparison;
    const smoothing = comparison.alpha != null;
    const tables = [];
    let total = 0;
    this.shownCurves = comparison.runs.map((run, i) => {
      const shown = run.shown(this.metric) || { raw: EMPTY, smooth: null };
      tables.push([shown.raw.xs, this.forScale(shown.raw.ys)]);
      if (smoothing) {
        const smooth = shown.smooth || EMPTY;
        tables.push([smooth.xs, this.forScale(smooth.ys)]);
      }
      total += shown.raw.xs.length;
      this.legendItems[i].dataset.points = String(shown.raw.xs.length);
      return shown;
    });
    const data = uPlot.join(tables);
    const layout = `${comparison.axis}|${smoothing}|${this.log}`;
    if (!this.chart || this.layout !== layout) {
      if (this.chart) this.chart.destroy();
      const width = Math.max(200, this.plotEl.clientWidth || this.el.clientWidth - 32);
      this.chart = new uPlot(this.options(width, smoothing), data, this.plotEl);
      this.layout = layout;
    } else {
      this.chart.setData(data, !comparison.range);
    }
    if (comparison.range) this.chart.setScale("x", { min: comparison.range[0], max: comparison.range[1] });
    this.el.dataset.points = String(total);
    this.showCursor(this.chart);
  }

  showCursor(u) {
    const comparison = this.comparison;
    const left = u && u.cursor ? u.cursor.left : null;
    const x = left != null && left >= 0 ? u.posToVal(left, "x") : null;
    setText(this.cursorEl, x == null ? "" : comparison.axis === "time" ? `t = ${formatX("time", x)}` : `Episode ${formatX("episode", Math.round(x))}`);
    const smoothing = comparison.alpha != null;
    this.shownCurves.forEach((shown, i) => {
      const curve = smoothing && shown.smooth ? shown.smooth : shown.raw;
      const value = x == null ? lastValue(curve) : nearestValue(curve, x);
      setText(this.legendItems[i].valueEl, value == null ? "—" : this.custom ? significant(value, 4) : formatMetric(this.metric, value));
    });
  }

  setRunVisible(run) {
    this.legendItems[run.index].button.setAttribute("aria-pressed", String(run.visible));
    this.legendItems[run.index].classList.toggle("is-hidden", !run.visible);
    if (!this.chart) return;
    const perRun = this.comparison.alpha != null ? 2 : 1;
    for (let k = 0; k < perRun; k += 1) this.chart.setSeries(1 + run.index * perRun + k, { show: run.visible });
  }

  resize() {
    if (!this.chart) return;
    const width = this.plotEl.clientWidth;
    if (width > 0 && width !== this.chart.width) this.chart.setSize({ width, height: this.comparison.height() });
  }
}

/**
 * The synchronized replay slot: the panel #comparison-replay, and this object as
 * ``window.spectatorComparison.replay``. A replay player joins with ``attach(player)``:
 * ``player.mount(stage, runs)`` is called once (``runs``: [{id, label, color}], in the page's
 * order) and ``player.showEpisode(episode)`` on every pick (a click on a graph on the episode
 * axis, or ``select(episode)`` called by anyone). Each pick also fires a
 * ``comparison:episode`` event ({detail: {episode, runs}}) on the panel; the page fires
 * ``comparison:ready`` on the document once this slot exists.
 */
export class ComparisonReplay {
  constructor(panel, runs) {
    this.panel = panel;
    this.stage = $("#comparison-replay-stage", panel);
    this.label = $("#comparison-replay-episode", panel);
    this.runs = runs.map((run) => ({ id: run.id, label: run.label, color: run.color }));
    this.player = null;
    this.episode = null;
  }

  attach(player) {
    this.player = player;
    this.stage.dataset.state = "attached";
    if (player.mount) player.mount(this.stage, this.runs);
    if (this.episode != null && player.showEpisode) player.showEpisode(this.episode);
  }

  select(episode) {
    this.episode = episode;
    this.panel.dataset.episode = String(episode);
    setText(this.label, `Episode ${integer(episode)} picked`);
    this.panel.dispatchEvent(new CustomEvent("comparison:episode", { detail: { episode, runs: this.runs } }));
    if (this.player && this.player.showEpisode) this.player.showEpisode(episode);
  }
}

class Comparison {
  constructor(data) {
    this.data = data;
    this.runs = data.runs.map((run, index) => new Run(run, index));
    this.axis = "episode";
    this.weight = 0; // smoothing as TensorBoard's slider: 0 is off, 0.99 heavy
    this.range = null; // [lo, hi] on the page's x axis while zoomed in
    this.graphs = new Map();
    this.generation = 0; // bumped by each whole reload: answers to older requests are dropped
    this.detailToken = 0;
    this.polls = 0;
    this.page = $("#compare-page");
    this.container = $("#compare-graphs");
    this.statusEl = $("#compare-status");
    this.wholeButton = $("#compare-whole");
    this.replay = new ComparisonReplay($("#comparison-replay"), this.runs);
    this.resizeObserver = new ResizeObserver(() => {
      for (const graph of this.graphs.values()) graph.resize();
    });
    this.wireControls();
  }

  get alpha() {
    return this.weight > 0 ? Number((1 - this.weight).toFixed(4)) : null;
  }

  height() {
    return window.matchMedia("(max-width: 640px)").matches ? 180 : 230;
  }

  wireControls() {
    for (const input of document.querySelectorAll("input[name=compare-axis]")) {
      input.addEventListener("change", () => {
        if (!input.checked) return;
        this.axis = input.value;
        this.range = null;
        this.page.dataset.axis = this.axis;
        this.loadAll();
      });
    }
    const slider = $("#compare-smooth");
    let timer = 0;
    slider.addEventListener("input", () => {
      this.weight = Number(slider.value);
      setText($("#compare-smooth-value"), this.weight ? this.weight.toFixed(2) : "off");
      this.page.dataset.state = "loading"; // the curves are about to be fetched again
      clearTimeout(timer);
      timer = setTimeout(() => this.loadAll(), SMOOTH_DELAY_MS);
    });
    this.wholeButton.addEventListener("click", () => this.resetZoom());
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) this.schedulePoll(0);
    });
  }

  setStatus(text) {
    setText(this.statusEl, text);
  }

  targetPoints() {
    const first = this.graphs.values().next().value;
    const width = first && first.plotEl.clientWidth ? first.plotEl.clientWidth : Math.min(this.container.clientWidth || 600, 720);
    return pointsForWidth(width);
  }

  params(points, { smooth = true } = {}) {
    const params = { x: this.axis, points };
    if (smooth && this.alpha != null) params.smooth = this.alpha;
    return params;
  }

  /** The x range every run's whole curves span, on the page's axis. */
  extent() {
    let first = null;
    let last = null;
    for (const run of this.runs) {
      for (const { raw } of run.curves.values()) {
        if (!raw.xs.length) continue;
        if (first == null || raw.xs[0] < first) first = raw.xs[0];
        if (last == null || raw.xs[raw.xs.length - 1] > last) last = raw.xs[raw.xs.length - 1];
      }
    }
    return [first, last];
  }

  // --- loading -------------------------------------------------------------------------

  async start() {
    this.page.dataset.axis = this.axis;
    await Promise.all([this.loadSummary(), this.loadAll()]);
  }

  /** Every run's whole curves (downsampled to the charts' width), then the zoomed range if any. */
  async loadAll() {
    const generation = ++this.generation;
    this.detailToken += 1;
    this.page.dataset.state = "loading";
    this.setStatus("Loading the runs…");
    const points = this.targetPoints();
    const results = await Promise.all(this.runs.map((run) => fetchSeries(run.historyUrl, run.metrics(), this.params(points))));
    if (generation !== this.generation) return;
    const failed = results.find((result) => !result.ok);
    results.forEach((result, i) => {
      if (result.ok) this.applyWhole(this.runs[i], result);
    });
    this.page.dataset.state = failed ? "error" : "ready";
    this.ensureGraphs();
    this.renderAll();
    this.describe(failed ? failed.message : "");
    if (this.range) this.loadDetail();
    this.schedulePoll();
  }

  applyWhole(run, result) {
    if (this.axis === "time" && result.x_range) run.startedAt = result.x_range[0];
    const shift = run.shift(this.axis);
    run.lastX = result.x_range ? result.x_range[1] : null;
    run.count = result.count;
    run.detail = null;
    run.curves = new Map();
    for (const [metric, series] of Object.entries(result.series)) {
      run.curves.set(metric, { raw: curveFrom(series.data, shift), smooth: series.smoothed ? curveFrom(series.smoothed, shift) : null });
    }
  }

  /** Merge a live run's new points (from its last x on) into its curves. */
  applyTail(run, result) {
    if (!result.x_range) return false;
    const shift = run.shift(this.axis);
    const from = run.lastX - shift;
    const alpha = this.alpha;
    const target = this.targetPoints();
    let grown = false;
    for (const [metric, series] of Object.entries(result.series)) {
      const tail = curveFrom(series.data, shift);
      const curves = run.curves.get(metric) || { raw: EMPTY, smooth: alpha != null ? EMPTY : null };
      curves.raw = spliceTail(curves.raw, from, tail);
      if (alpha != null) {
        const base = curves.smooth || EMPTY;
        const keep = lowerBound(base.xs, from);
        // The tail's own average would restart at its first point: carry the run's on.
        const ys = continueEma(keep ? base.ys[keep - 1] : null, tail.ys, alpha);
        curves.smooth = { xs: base.xs.slice(0, keep).concat(tail.xs), ys: base.ys.slice(0, keep).concat(ys) };
      }
      run.curves.set(metric, curves);
      if (run.detail && run.detail.curves.has(metric) && from <= run.detail.hi) {
        const detail = run.detail.curves.get(metric);
        detail.raw = spliceTail(detail.raw, from, tail);
        detail.smooth = null;
      }
      grown = grown || curves.raw.xs.length > REFETCH_GROWTH * target;
    }
    run.lastX = result.x_range[1];
    return grown;
  }

  /** The zoomed range of every run, at the chart's resolution. */
  async loadDetail() {
    if (!this.range) return;
    const [lo, hi] = this.range;
    const token = ++this.detailToken;
    const generation = this.generation;
    const points = this.targetPoints();
    this.page.dataset.detail = "loading";
    await Promise.all(this.runs.map(async (run) => {
      const metrics = run.metricsWithData();
      if (!metrics.length) return;
      const shift = run.shift(this.axis);
      const params = this.params(points, { smooth: false });
      if (this.axis === "episode") {
        params.episode_from = Math.max(0, Math.ceil(lo));
        params.episode_to = Math.floor(hi);
        if (params.episode_to < params.episode_from) return;
      } else {
        params.time_from = lo + shift;
        params.time_to = hi + shift;
      }
      const result = await fetchSeries(run.historyUrl, metrics, params);
      if (token !== this.detailToken || generation !== this.generation || !result.ok) return;
      const curves = new Map();
      for (const [metric, series] of Object.entries(result.series)) {
        const raw = curveFrom(series.data, shift);
        const whole = run.curves.get(metric);
        // Raw points smooth exactly, carrying on the whole run's average; a downsampled range
        // keeps the whole run's smoothed line, which the server averaged over every point.
        const smooth = this.alpha != null && !result.downsampled && whole && whole.smooth
          ? { xs: raw.xs, ys: continueEma(valueBefore(whole.smooth, lo), raw.ys, this.alpha) }
          : null;
        curves.set(metric, { raw, smooth });
      }
      run.detail = { lo, hi, curves, count: result.count, downsampled: result.downsampled };
    }));
    if (token !== this.detailToken) return;
    this.page.dataset.detail = "loaded";
    this.renderAll();
    const counted = this.runs.reduce((sum, run) => sum + (run.detail ? run.detail.count : 0), 0);
    const exact = this.runs.every((run) => !run.detail || !run.detail.downsampled);
    this.setStatus(`Zoomed in: ${integer(counted)} points in range${exact ? ", every one drawn" : ", downsampled to the chart's width"}`);
  }

  // --- live runs ---------------------------------------------------------------------------

  schedulePoll(delay = this.data.poll_ms) {
    clearTimeout(this.pollTimer);
    if (!this.runs.some((run) => run.live)) return;
    this.pollTimer = setTimeout(() => this.poll(), delay);
  }

  async poll() {
    if (document.hidden) return; // visibilitychange polls again
    const generation = this.generation;
    this.polls += 1;
    const points = this.targetPoints();
    let refetch = false;
    await Promise.all(this.runs.filter((run) => run.live).map(async (run) => {
      if (run.lastX == null) {
        const result = await fetchSeries(run.historyUrl, run.metrics(), this.params(points));
        if (generation === this.generation && result.ok) this.applyWhole(run, result);
        return;
      }
      const params = this.params(points, { smooth: false });
      params[this.axis === "episode" ? "episode_from" : "time_from"] = run.lastX;
      const result = await fetchSeries(run.historyUrl, run.metrics(), params);
      if (generation === this.generation && result.ok) refetch = this.applyTail(run, result) || refetch;
    }));
    if (this.polls % SUMMARY_EVERY_POLLS === 0) refetch = (await this.refreshLiveSummaries()) || refetch;
    if (generation !== this.generation) return;
    this.page.dataset.polls = String(this.polls);
    if (refetch) {
      this.loadAll();
      return;
    }
    this.ensureGraphs();
    this.renderAll();
    this.describe();
    this.schedulePoll();
  }

  // --- summary table -----------------------------------------------------------------------

  async loadSummary() {
    const query = new URLSearchParams({ sessions: this.runs.map((run) => run.id).join(","), last: String(this.data.recent_episodes) });
    let result;
    try {
      result = await api("GET", `${this.data.comparison_url}?${query}`);
    } catch {
      return false;
    }
    if (!result.ok) {
      this.setStatus(errorMessage(result));
      return false;
    }
    let keysChanged = false;
    result.data.sessions.forEach((summary, i) => {
      keysChanged = this.applySummary(this.runs[i], summary) || keysChanged;
    });
    this.markLeaders();
    $("#compare-summary").dataset.state = "loaded";
    return keysChanged;
  }

  async refreshLiveSummaries() {
    let keysChanged = false;
    await Promise.all(this.runs.filter((run) => run.live).map(async (run) => {
      let result;
      try {
        result = await api("GET", `${run.summaryUrl}?last=${this.data.recent_episodes}`);
      } catch {
        return;
      }
      if (result.ok) keysChanged = this.applySummary(run, result.data) || keysChanged;
    }));
    this.markLeaders();
    return keysChanged;
  }

  /** Show a run's summary in its row; true when it has custom scalars the graphs lack. */
  applySummary(run, summary) {
    const keysChanged = summary.extra_keys.some((key) => !run.extraKeys.includes(key));
    run.extraKeys = summary.extra_keys;
    run.status = summary.status;
    run.summary = summary;
    const row = document.querySelector(`#compare-summary tr[data-run="${run.index}"]`);
    const cell = (field) => $(`[data-field="${field}"]`, row);
    const badge = h("span", { class: `badge${run.live ? " badge-live" : ""}` }, summary.status.charAt(0).toUpperCase() + summary.status.slice(1));
    cell("status").replaceChildren(badge);
    row.dataset.status = summary.status;
    const best = cell("best_reward");
    best.replaceChildren(fixed(summary.best_reward, 2));
    if (summary.best_reward_episode != null) best.append(h("span", { class: "muted small cell-note" }, `episode ${integer(summary.best_reward_episode)}`));
    setText(cell("average_reward"), fixed(summary.average_reward, 2));
    setText(cell("recent_average_reward"), fixed(summary.recent_average_reward, 2));
    setText(cell("win_rate"), percent(summary.win_rate));
    const episodes = cell("episodes");
    episodes.replaceChildren(integer(summary.episodes));
    if (summary.last_episode != null) episodes.append(h("span", { class: "muted small cell-note" }, `last ${integer(summary.last_episode)}`));
    setText(cell("episodes_per_hour"), isNum(summary.episodes_per_hour) ? fixed(summary.episodes_per_hour, 1) : "—");
    setText(cell("duration_seconds"), duration(summary.duration_seconds));
    return keysChanged;
  }

  /** Mark the leading run of each column where higher is better. */
  markLeaders() {
    for (const field of ["best_reward", "average_reward", "recent_average_reward", "win_rate", "episodes_per_hour"]) {
      const values = this.runs.map((run) => (run.summary ? run.summary[field] : null));
      const numbers = values.filter(isNum);
      const top = numbers.length > 1 ? Math.max(...numbers) : null;
      this.runs.forEach((run, i) => {
        const cell = document.querySelector(`#compare-summary tr[data-run="${run.index}"] [data-field="${field}"]`);
        cell.classList.toggle("is-lead", top != null && values[i] === top);
      });
    }
  }

  // --- drawing and zoom ----------------------------------------------------------------------

  /** A graph for every metric some run has points of: seed metrics in order, then custom scalars. */
  ensureGraphs() {
    const specs = METRICS.map(([name, title]) => ({ name, title, custom: false }));
    const extras = new Set(this.runs.flatMap((run) => run.extraKeys));
    for (const key of extras) specs.push({ name: `${EXTRA_PREFIX}${key}`, title: key, custom: true });
    let previous = null;
    for (const spec of specs) {
      let graph = this.graphs.get(spec.name);
      if (!graph && this.runs.some((run) => run.curves.has(spec.name) && run.curves.get(spec.name).raw.xs.length)) {
        graph = new CompareGraph(this, spec);
        this.graphs.set(spec.name, graph);
        this.resizeObserver.observe(graph.plotEl);
      }
      if (!graph) continue;
      if (graph.el.previousElementSibling !== (previous ? previous.el : null) || !graph.el.isConnected) {
        if (previous) previous.el.after(graph.el);
        else this.container.prepend(graph.el);
      }
      previous = graph;
    }
    $("#compare-empty").hidden = this.graphs.size > 0 || this.page.dataset.state === "loading";
  }

  renderAll() {
    for (const graph of this.graphs.values()) {
      graph.render();
      for (const run of this.runs) if (!run.visible) graph.setRunVisible(run);
    }
    this.wholeButton.disabled = !this.range;
  }

  describe(problem = "") {
    // The summary's count is the newer one for a live run (tails are merged, not counted).
    const stored = this.runs.reduce((sum, run) => sum + Math.max(run.count, run.summary ? run.summary.points : 0), 0);
    let drawn = 0;
    for (const graph of this.graphs.values()) drawn = Math.max(drawn, Number(graph.el.dataset.points));
    this.page.dataset.drawn = String(drawn);
    const live = this.runs.filter((run) => run.live).length;
    const parts = [`${integer(stored)} points stored, up to ${integer(drawn)} drawn a graph`];
    if (live) parts.push(`${live} live, updating every ${Math.round(this.data.poll_ms / 1000)} s`);
    if (problem) parts.push(problem);
    this.setStatus(parts.join(" · "));
  }

  /** The user zoomed (a drag, Ctrl + wheel) to [min, max]: show it on every graph, then fetch its detail. */
  zoomTo(min, max) {
    const [first, last] = this.extent();
    if (first == null || !(max > min)) return;
    const slack = (last - first) * 1e-9;
    if (min <= first + slack && max >= last - slack) {
      this.resetZoom();
      return;
    }
    this.range = [min, max];
    for (const graph of this.graphs.values()) if (graph.chart) graph.chart.setScale("x", { min, max });
    this.wholeButton.disabled = false;
    clearTimeout(this.detailTimer);
    this.detailTimer = setTimeout(() => this.loadDetail(), DETAIL_DELAY_MS);
  }

  resetZoom() {
    clearTimeout(this.detailTimer);
    this.detailToken += 1;
    this.range = null;
    for (const run of this.runs) run.detail = null;
    delete this.page.dataset.detail;
    this.renderAll();
    this.describe();
  }

  toggleRun(run) {
    run.visible = !run.visible;
    for (const graph of this.graphs.values()) graph.setRunVisible(run);
  }

  /** The range shown, as the export API filters it, for one run (null: the whole run). */
  rangeOf(sessionId) {
    const run = this.runs.find((candidate) => candidate.id === sessionId);
    if (!run || !this.range) return null;
    const [lo, hi] = this.range;
    if (this.axis === "episode") return { episode_from: Math.max(0, Math.ceil(lo)), episode_to: Math.floor(hi) };
    const shift = run.shift("time");
    return { time_from: lo + shift, time_to: hi + shift };
  }
}

const comparison = new Comparison(readJson("compare-data"));
window.spectatorComparison = comparison;
// A replay module that loaded first learns here that the slot is ready.
document.dispatchEvent(new CustomEvent("comparison:ready", { detail: comparison }));
wireExports(document, (sessionId) => comparison.rangeOf(sessionId));
comparison.start();
