// The metrics overlay: episode progress and the latest value of every seed metric.
import { $, $$, h, setText } from "./dom.js";
import { formatMetric, isNum, significant, timeOfDay } from "./format.js";

export class MetricsOverlay {
  constructor(root, { totalEpisodes = null } = {}) {
    this.root = root;
    this.totalEpisodes = totalEpisodes;
    this.cells = new Map($$("[data-metric]", root).map((el) => [el.dataset.metric, el]));
    this.episodeText = $("#episode-text", root);
    this.episodePct = $("#episode-pct", root);
    this.progress = $("#episode-progress", root);
    this.updated = $("#overlay-updated", root);
    this.extras = $("#overlay-extra", root);
    this.extraCells = new Map();
    this.latest = {};
    this.latestExtra = {};
  }

  /** Show the latest value of every field across ``points`` (a late joiner's history). */
  updateMany(points) {
    if (!points.length) return;
    for (const point of points.slice(0, -1)) this.merge(point);
    this.update(points[points.length - 1]);
  }

  merge(data) {
    for (const [name, value] of Object.entries(data)) {
      if (value != null && value !== "" && name !== "extra") this.latest[name] = value;
    }
    for (const [key, value] of Object.entries(data.extra || {})) this.latestExtra[key] = value;
  }

  /** Show a MetricsData point; fields it leaves out keep their last value. */
  update(data) {
    this.merge(data);
    // While a replayed episode is pinned, live points are remembered but not shown.
    if (this.pinned) return;
    this.render(this.latest, this.latestExtra, data.timestamp);
  }

  /** Show one point on its own (a replayed episode's) until ``unpin``; live points keep arriving. */
  pin(data) {
    this.pinned = true;
    this.root.dataset.pinned = "1";
    this.render({ ...data }, { ...(data.extra || {}) }, data.timestamp);
  }

  unpin() {
    if (!this.pinned) return;
    this.pinned = false;
    delete this.root.dataset.pinned;
    this.render(this.latest, this.latestExtra, this.latest.timestamp);
  }

  render(values, extra, timestamp) {
    for (const [name, el] of this.cells) setText(el, formatMetric(name, values[name]));
    const episode = values.episode;
    const total = values.total_episodes || this.totalEpisodes;
    if (isNum(episode)) {
      setText(this.episodeText, total ? `Episode ${episode.toLocaleString("en-US")} of ${total.toLocaleString("en-US")}` : `Episode ${episode.toLocaleString("en-US")}`);
      if (total) {
        this.progress.max = total;
        this.progress.value = Math.min(episode, total);
        setText(this.episodePct, `${Math.min(100, (100 * episode) / total).toFixed(1)}%`);
      }
    }
    if (isNum(timestamp)) setText(this.updated, `at ${timeOfDay(timestamp)}`);
    this.updateExtras(extra);
  }

  updateExtras(extra) {
    for (const [key, value] of Object.entries(extra)) {
      let cell = this.extraCells.get(key);
      if (!cell) {
        cell = h("dd", { class: "mono" });
        // The key is user text: a text node, never markup.
        this.extras.append(h("div", { class: "extra" }, h("dt", {}, key), cell));
        this.extraCells.set(key, cell);
        this.extras.hidden = false;
      }
      setText(cell, significant(value, 4));
    }
  }

  setAlgorithm(algorithm) {
    if (algorithm && !this.latest.algorithm) {
      this.latest.algorithm = algorithm;
      setText(this.cells.get("algorithm"), algorithm);
    }
  }
}
