// The performance graphs: one uPlot chart per graph, fed as points stream in.
// Drag to zoom, Ctrl/⌘ + wheel (or pinch) to zoom around the cursor, double-click to reset;
// the legend shows the values under the cursor. Each graph has an EMA smoothing slider and
// the learning-metrics graph a log-scale toggle. "Whole run" draws the session's stored history
// (the history API, downsampled on the server to the chart's width) before the live points;
// zooming in then fetches the range shown at that resolution, so a run of a million points
// stays a few thousand in the browser.
import uPlot from "../vendor/uplot/uPlot.esm.js";
import { h, setText } from "./dom.js";
import { formatMetric, integer, isNum, significant, timeOfDay } from "./format.js";
import { fetchSeries, lowerBound, pointsForWidth, upperBound } from "./history.js";

const CUSTOM_PREFIX = "custom:";
const PALETTE = ["#5b9cff", "#f5a524", "#3ecf8e", "#f0506e", "#b28cff", "#2fd0d0"];
const LABELS = {
  current_reward: "Current",
  average_reward: "Average",
  best_reward: "Best",
  win_rate: "Win rate",
  episode_length: "Steps",
  loss_value: "Loss",
  learning_rate: "Learning rate",
  epsilon: "Epsilon",
  actions_per_second: "Actions / s",
  frames_per_second: "Frames / s",
};
const LOG_BY_DEFAULT = new Set(["learning_metrics"]);
// With the whole run shown, live points pile up past max_points until this many times it,
// then the whole run is fetched again (downsampled) and the live window trimmed.
const HISTORY_REFRESH_FACTOR = 5;
const DETAIL_DELAY_MS = 250;

/** Rows [from, to) of a table {xs, episodes, ys: [one array a metric]}. */
function tableSlice(table, from, to) {
  return { xs: table.xs.slice(from, to), episodes: table.episodes.slice(from, to), ys: table.ys.map((ys) => ys.slice(from, to)) };
}

function tableConcat(...tables) {
  return {
    xs: [].concat(...tables.map((table) => table.xs)),
    episodes: [].concat(...tables.map((table) => table.episodes)),
    ys: tables[0].ys.map((_, i) => [].concat(...tables.map((table) => table.ys[i]))),
  };
}

function decadesOnly(u, splits) {
  return splits.map((v) => (v > 0 && Math.abs(Math.log10(v) - Math.round(Math.log10(v))) < 1e-9 ? v : null));
}

/** One-line clock labels for the time axis (seconds when the view spans under 3 minutes). */
function timeLabels(u, splits) {
  const span = u.scales.x.max - u.scales.x.min;
  const options = span < 180 ? { hour: "2-digit", minute: "2-digit", second: "2-digit" } : { hour: "2-digit", minute: "2-digit" };
  return splits.map((v) => (v == null ? "" : new Date(v * 1000).toLocaleTimeString([], options)));
}

function cssVar(name, fallback) {
  const value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return value || fallback;
}

/** Insertion index keeping xs ascending (points nearly always arrive in order). */
function insertionIndex(xs, x) {
  let lo = 0;
  let hi = xs.length;
  if (hi === 0 || xs[hi - 1] <= x) return hi;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (xs[mid] <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

class Graph {
  constructor(config, board) {
    this.config = config;
    this.board = board;
    this.id = config.graph_id;
    this.metrics = config.metrics;
    this.custom = this.id.startsWith(CUSTOM_PREFIX);
    this.maxPoints = config.max_points || 1000;
    this.xs = [];
    this.episodes = [];
    this.ys = this.metrics.map(() => []);
    this.smoothing = 0;
    this.log = LOG_BY_DEFAULT.has(this.id);
    this.zoomed = false;
    this.dirty = false;
    this.chart = null;
    this.history = null; // the whole run's stored points before the live ones, when shown
    this.detail = null; // a zoomed range of it, fetched at the chart's resolution
    this.detailToken = 0;
    this.shownXs = [];
    this.shownEpisodes = [];
    this.build();
  }

  build() {
    const slug = this.id.replace(/[^A-Za-z0-9_-]/g, "-");
    const smoothId = `smooth-${slug}`;
    this.smoothValue = h("output", { class: "mono small", for: smoothId }, "off");
    const slider = h("input", {
      type: "range", id: smoothId, min: "0", max: "0.98", step: "0.02", value: "0",
      "aria-label": `Smoothing of ${this.config.title}`,
    });
    slider.addEventListener("input", () => {
      this.smoothing = Number(slider.value);
      setText(this.smoothValue, this.smoothing ? this.smoothing.toFixed(2) : "off");
      this.markDirty();
    });
    const controls = h("div", { class: "graph-controls" },
      h("label", { class: "graph-control", for: smoothId }, "Smoothing"), slider, this.smoothValue);
    if (this.id === "learning_metrics") {
      const logId = `log-${slug}`;
      const toggle = h("input", { type: "checkbox", id: logId, checked: this.log });
      toggle.addEventListener("change", () => {
        this.log = toggle.checked;
        this.rebuildChart();
      });
      controls.append(h("span", { class: "graph-control graph-check" }, toggle, h("label", { for: logId }, "Log scale")));
    }
    this.plotEl = h("div", { class: "graph-plot" });
    this.emptyEl = h("p", { class: "graph-empty muted small" }, "No data yet");
    this.el = h("article", { class: "card graph", dataset: { graphId: this.id, points: "0" } },
      h("div", { class: "card-head" },
        h("h2", {}, this.config.title, this.custom ? h("span", { class: "badge badge-soft" }, "custom") : null),
        h("span", { class: "muted small graph-ylabel" }, this.config.y_label || "")),
      controls,
      h("div", { class: "graph-body" }, this.plotEl, this.emptyEl),
      h("p", { class: "graph-hint muted small" }, "Drag to zoom · Ctrl + wheel to zoom · double-click to reset"));
  }

  push(x, episode, values) {
    const index = insertionIndex(this.xs, x);
    this.xs.splice(index, 0, x);
    this.episodes.splice(index, 0, episode);
    values.forEach((value, i) => this.ys[i].splice(index, 0, isNum(value) ? value : null));
    // Under the whole run, the stored history covers what scrolls out of the live window.
    if (this.history && this.xs.length > HISTORY_REFRESH_FACTOR * this.maxPoints) this.board.refreshWholeRun();
    const extra = this.history ? 0 : this.xs.length - this.maxPoints;
    if (extra > 0) {
      this.xs.splice(0, extra);
      this.episodes.splice(0, extra);
      this.ys.forEach((ys) => ys.splice(0, extra));
    }
    this.markDirty();
  }

  clear() {
    this.xs = [];
    this.episodes = [];
    this.ys = this.metrics.map(() => []);
    this.markDirty();
  }

  markDirty() {
    this.dirty = true;
    this.board.schedule();
  }

  displayed(ys) {
    let out = ys;
    if (this.smoothing > 0) {
      const weight = this.smoothing;
      let last = null;
      out = ys.map((value) => {
        if (value == null) return null;
        last = last == null ? value : last * weight + value * (1 - weight);
        return last;
      });
    }
    if (this.log) out = out.map((value) => (value != null && value > 0 ? value : null));
    return out;
  }

  data() {
    const shown = this.shown();
    this.shownXs = shown.xs;
    this.shownEpisodes = shown.episodes;
    return [shown.xs.slice(), ...shown.ys.map((ys) => this.displayed(ys))];
  }

  /** The live points; with the whole run, its stored history before them and a zoomed range's detail. */
  shown() {
    const live = { xs: this.xs, episodes: this.episodes, ys: this.ys };
    if (!this.history) return live;
    const liveFrom = this.xs.length ? this.xs[0] : Infinity;
    let table = tableConcat(tableSlice(this.history, 0, lowerBound(this.history.xs, liveFrom)), live);
    if (this.detail) {
      const { lo, hi } = this.detail;
      table = tableConcat(tableSlice(table, 0, lowerBound(table.xs, lo)), this.detail, tableSlice(table, upperBound(table.xs, hi), table.xs.length));
    }
    return table;
  }

  /** The history API's names of this graph's curves. */
  serverMetrics() {
    return this.metrics.map((metric) => (this.custom ? `extra.${metric}` : metric));
  }

  /** One table of this graph's curves from the history API's series (each curve has its own x). */
  tableOf(series) {
    const joined = uPlot.join(this.serverMetrics().map((name) => {
      const data = series[name] ? series[name].data : [];
      return [data.map((point) => point[0]), data.map((point) => point[1])];
    }));
    return { xs: joined[0], episodes: new Array(joined[0].length).fill(null), ys: joined.slice(1) };
  }

  setHistory(series) {
    this.history = this.tableOf(series);
    this.zoomed = false;
    this.trimLive();
    this.dropDetail();
  }

  leaveHistory() {
    this.history = null;
    this.zoomed = false;
    this.trimLive();
    this.dropDetail();
  }

  /** Keep the latest max_points live points (the history covers older ones, if shown). */
  trimLive() {
    const extra = this.xs.length - this.maxPoints;
    if (extra <= 0) return;
    this.xs.splice(0, extra);
    this.episodes.splice(0, extra);
    this.ys.forEach((ys) => ys.splice(0, extra));
  }

  /** The user zoomed to [lo, hi]: with the whole run shown, fetch that range at the chart's resolution. */
  onZoom(lo, hi) {
    // A graph without data has no x scale: its copy of a synced selection means nothing.
    if (!(Number.isFinite(lo) && Number.isFinite(hi) && hi > lo)) return;
    this.board.zoomedRange = { time_from: lo, time_to: hi };
    if (!this.history) return;
    clearTimeout(this.detailTimer);
    this.detailTimer = setTimeout(() => this.loadDetail(lo, hi), DETAIL_DELAY_MS);
  }

  async loadDetail(lo, hi) {
    const token = ++this.detailToken;
    this.el.dataset.detail = "loading";
    const params = { x: "time", points: pointsForWidth(this.plotEl.clientWidth), time_from: lo, time_to: hi };
    const result = await fetchSeries(this.board.historyUrl, this.serverMetrics(), params);
    if (token !== this.detailToken || !this.history || !this.zoomed) return;
    if (!result.ok) {
      this.el.dataset.detail = "error";
      return;
    }
    this.detail = { lo, hi, ...this.tableOf(result.series) };
    Object.assign(this.el.dataset, { detail: "loaded", detailCount: String(result.count), detailReceived: String(result.received) });
    this.markDirty();
  }

  dropDetail() {
    clearTimeout(this.detailTimer);
    this.detailToken += 1;
    this.detail = null;
    delete this.el.dataset.detail;
    this.markDirty();
  }

  options(width) {
    const axis = cssVar("--chart-axis", "#8b93a7");
    const grid = cssVar("--chart-grid", "rgba(139,147,167,0.15)");
    const graph = this;
    // On a log scale only the powers of ten get lines and labels (not 2×, 3×, …).
    const decades = this.log ? { filter: decadesOnly } : {};
    return {
      width,
      height: this.board.height(),
      cursor: { drag: { x: true, y: false, setScale: true }, sync: { key: "spectator-graphs" }, points: { size: 6 } },
      legend: { live: true },
      scales: { x: { time: true }, y: this.log ? { distr: 3, log: 10 } : { auto: true } },
      axes: [
        {
          stroke: axis, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 }, font: "11px system-ui, sans-serif",
          space: 64, values: timeLabels,
        },
        {
          stroke: axis, font: "11px system-ui, sans-serif", size: 56,
          grid: { stroke: grid, width: 1, ...decades },
          ticks: { stroke: grid, width: 1, ...decades },
          ...decades,
          values: (u, splits) => splits.map((v) => (v == null ? "" : significant(v, 3))),
        },
      ],
      series: [
        {
          label: "Episode",
          value: (u, v, si, idx) => {
            if (idx == null) return "—";
            const episode = graph.shownEpisodes[idx];
            return episode == null ? timeOfDay(v) : `${episode} · ${timeOfDay(v)}`;
          },
        },
        ...this.metrics.map((metric, i) => ({
          label: this.custom ? metric : LABELS[metric] || metric,
          stroke: PALETTE[i % PALETTE.length],
          width: 1.75,
          spanGaps: true,
          points: { show: false },
          value: (u, v) => (v == null ? "—" : this.custom ? significant(v, 4) : formatMetric(metric, v)),
        })),
      ],
      hooks: {
        setSelect: [(u) => {
          if (u.select.width <= 0) return;
          graph.zoomed = true;
          graph.onZoom(u.posToVal(u.select.left, "x"), u.posToVal(u.select.left + u.select.width, "x"));
        }],
        ready: [(u) => {
          u.over.addEventListener("dblclick", () => {
            graph.zoomed = false;
            graph.board.zoomedRange = null;
            graph.dropDetail();
          });
          u.over.addEventListener("wheel", (event) => graph.wheelZoom(u, event), { passive: false });
        }],
      },
    };
  }

  wheelZoom(u, event) {
    // A plain wheel scrolls the page; Ctrl/⌘ + wheel (and a trackpad pinch) zooms.
    if (!(event.ctrlKey || event.metaKey) || this.shownXs.length < 2) return;
    event.preventDefault();
    const left = u.cursor.left;
    if (left == null || left < 0) return;
    const at = u.posToVal(left, "x");
    const { min, max } = u.scales.x;
    const factor = event.deltaY < 0 ? 0.8 : 1.25;
    const first = this.shownXs[0];
    const last = this.shownXs[this.shownXs.length - 1];
    const newMin = Math.max(first, at - (at - min) * factor);
    const newMax = Math.min(last, at + (max - at) * factor);
    this.zoomed = !(newMin <= first && newMax >= last);
    u.setScale("x", { min: newMin, max: newMax });
    if (this.zoomed) {
      this.onZoom(newMin, newMax);
    } else {
      this.board.zoomedRange = null;
      this.dropDetail();
    }
  }

  rebuildChart() {
    if (this.chart) {
      this.chart.destroy();
      this.chart = null;
    }
    this.zoomed = false;
    this.markDirty();
  }

  render() {
    if (!this.dirty) return;
    this.dirty = false;
    const width = Math.max(200, this.plotEl.clientWidth || this.el.clientWidth - 32);
    if (!this.chart) {
      this.chart = new uPlot(this.options(width), this.data(), this.plotEl);
    } else {
      this.chart.setData(this.data(), !this.zoomed);
    }
    this.el.dataset.points = String(this.shownXs.length);
    this.emptyEl.hidden = this.shownXs.length > 0;
  }

  resize() {
    if (!this.chart) return;
    const width = this.plotEl.clientWidth;
    if (width > 0 && width !== this.chart.width) this.chart.setSize({ width, height: this.board.height() });
  }
}

export class GraphBoard {
  /** @param historyUrl the session's history API: offers "Whole run" when given */
  constructor(container, { historyUrl = "" } = {}) {
    this.container = container;
    this.graphs = new Map();
    this.frame = 0;
    this.resizeObserver = new ResizeObserver(() => {
      for (const graph of this.graphs.values()) graph.resize();
    });
    this.historyUrl = historyUrl;
    this.mode = "recent";
    this.historyToken = 0;
    this.zoomedRange = null;
    if (historyUrl) this.buildHistoryControls();
  }

  buildHistoryControls() {
    const choice = (value, label, title) => {
      const id = `graphs-history-${value}`;
      return [h("input", { type: "radio", name: "graphs-history", id, value, checked: value === this.mode }), h("label", { for: id, title }, label)];
    };
    const modes = h("fieldset", { class: "segmented" },
      h("legend", { class: "sr-only" }, "What the graphs show"),
      ...choice("recent", "Recent", "The latest points, as they stream in"),
      ...choice("whole", "Whole run", "Every point of the run, downsampled on the server to the chart's width; zoom in for detail"));
    modes.addEventListener("change", (event) => this.setMode(event.target.value));
    this.historyStatus = h("span", { class: "muted small", role: "status", "aria-live": "polite" });
    this.toolbar = h("div", { class: "graphs-toolbar", id: "graphs-history", dataset: { history: "recent" } }, modes, this.historyStatus);
    this.container.before(this.toolbar);
  }

  setMode(mode) {
    this.mode = mode;
    this.zoomedRange = null;
    if (mode === "whole") {
      this.loadWholeRun();
      return;
    }
    this.historyToken += 1;
    for (const graph of this.graphs.values()) graph.leaveHistory();
    this.toolbar.dataset.history = "recent";
    setText(this.historyStatus, "");
  }

  /** Every graph's curves over the whole run, in one request (or a few: the API takes 16 metrics). */
  async loadWholeRun() {
    const token = ++this.historyToken;
    const graphs = [...this.graphs.values()];
    const metrics = [...new Set(graphs.flatMap((graph) => graph.serverMetrics()))];
    const points = pointsForWidth(Math.max(0, ...graphs.map((graph) => graph.plotEl.clientWidth || 0)));
    this.toolbar.dataset.history = "loading";
    setText(this.historyStatus, "Loading the whole run…");
    const result = await fetchSeries(this.historyUrl, metrics, { x: "time", points });
    if (token !== this.historyToken || this.mode !== "whole") return;
    if (!result.ok) {
      this.toolbar.dataset.history = "error";
      setText(this.historyStatus, result.message);
      return;
    }
    for (const graph of graphs) graph.setHistory(result.series);
    Object.assign(this.toolbar.dataset, { history: "loaded", count: String(result.count), received: String(result.received), points: String(points) });
    const how = result.downsampled ? `drawn from ${integer(result.received)} (downsampled on the server; zoom in for detail)` : "every one drawn";
    setText(this.historyStatus, `Whole run: ${integer(result.count)} points, ${how}`);
  }

  /** Fetch the whole run again soon (live points piled up under it). */
  refreshWholeRun() {
    if (this.refreshTimer) return;
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = 0;
      if (this.mode === "whole") this.loadWholeRun();
    }, 1000);
  }

  /** The time range the graphs show, as the export API filters it (null: the whole run). */
  shownRange() {
    if (this.zoomedRange) return this.zoomedRange;
    if (this.mode === "whole") return null;
    let first = null;
    for (const graph of this.graphs.values()) if (graph.xs.length && (first == null || graph.xs[0] < first)) first = graph.xs[0];
    return first == null ? null : { time_from: first };
  }

  height() {
    return window.matchMedia("(max-width: 640px)").matches ? 170 : 210;
  }

  /** Add the graphs of a graph_config that are not shown yet (custom scalars appear over time). */
  configure(configs) {
    for (const config of configs) {
      if (this.graphs.has(config.graph_id)) continue;
      const graph = new Graph(config, this);
      this.graphs.set(config.graph_id, graph);
      this.container.append(graph.el);
      this.resizeObserver.observe(graph.plotEl);
      graph.markDirty();
    }
  }

  /** Add one MetricsData point to every graph that has a value for it. */
  add(point) {
    if (!isNum(point.timestamp)) return;
    for (const graph of this.graphs.values()) {
      const values = graph.metrics.map((metric) =>
        graph.custom ? (point.extra || {})[metric] : point[metric]);
      if (values.some(isNum)) graph.push(point.timestamp, point.episode, values);
    }
  }

  /** Replace every graph's data with ``points`` (after a reconnect's backfill). */
  reset(points) {
    for (const graph of this.graphs.values()) graph.clear();
    for (const point of points) this.add(point);
  }

  schedule() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      for (const graph of this.graphs.values()) graph.render();
    });
  }
}
