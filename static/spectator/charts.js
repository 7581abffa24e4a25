// The performance graphs: one uPlot chart per graph, fed as points stream in.
// Drag to zoom, Ctrl/⌘ + wheel (or pinch) to zoom around the cursor, double-click to reset;
// the legend shows the values under the cursor. Each graph has an EMA smoothing slider and
// the learning-metrics graph a log-scale toggle.
import uPlot from "../vendor/uplot/uPlot.esm.js";
import { h, setText } from "./dom.js";
import { formatMetric, isNum, significant, timeOfDay } from "./format.js";

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
    const extra = this.xs.length - this.maxPoints;
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
    return [this.xs.slice(), ...this.ys.map((ys) => this.displayed(ys))];
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
          value: (u, v, si, idx) => (idx == null || graph.episodes[idx] == null ? "—" : `${graph.episodes[idx]} · ${timeOfDay(v)}`),
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
        setSelect: [(u) => { if (u.select.width > 0) graph.zoomed = true; }],
        ready: [(u) => {
          u.over.addEventListener("dblclick", () => { graph.zoomed = false; });
          u.over.addEventListener("wheel", (event) => graph.wheelZoom(u, event), { passive: false });
        }],
      },
    };
  }

  wheelZoom(u, event) {
    // A plain wheel scrolls the page; Ctrl/⌘ + wheel (and a trackpad pinch) zooms.
    if (!(event.ctrlKey || event.metaKey) || this.xs.length < 2) return;
    event.preventDefault();
    const left = u.cursor.left;
    if (left == null || left < 0) return;
    const at = u.posToVal(left, "x");
    const { min, max } = u.scales.x;
    const factor = event.deltaY < 0 ? 0.8 : 1.25;
    const first = this.xs[0];
    const last = this.xs[this.xs.length - 1];
    const newMin = Math.max(first, at - (at - min) * factor);
    const newMax = Math.min(last, at + (max - at) * factor);
    this.zoomed = !(newMin <= first && newMax >= last);
    u.setScale("x", { min: newMin, max: newMax });
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
    this.el.dataset.points = String(this.xs.length);
    this.emptyEl.hidden = this.xs.length > 0;
  }

  resize() {
    if (!this.chart) return;
    const width = this.plotEl.clientWidth;
    if (width > 0 && width !== this.chart.width) this.chart.setSize({ width, height: this.board.height() });
  }
}

export class GraphBoard {
  constructor(container) {
    this.container = container;
    this.graphs = new Map();
    this.frame = 0;
    this.resizeObserver = new ResizeObserver(() => {
      for (const graph of this.graphs.values()) graph.resize();
    });
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
