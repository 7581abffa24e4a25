// The comparison page's synchronized replay: the chosen episode of every run side by side,
// one set of controls driving every pane in lock-step (the clock of sync_replay.js).
//
// It joins the page's replay slot (window.spectatorComparison.replay.attach). Each run's
// recorded episodes come from the recordings API; a pick (a click on a graph on the episode
// axis, or a run's own episode field) loads each run's episode, or where a run did not record
// it its nearest recorded one, through the export endpoint: one request a run. Panes line up
// by step index from each episode's start; the clock waits as long as the slowest episode
// still going took between those steps (at most a second, at the chosen speed).
import { api, errorMessage } from "./api.js";
import { h, setText } from "./dom.js";
import { FrameView } from "./frames.js";
import { isNum, significant } from "./format.js";
import * as clock from "./sync_replay.js";

const LIST_LIMIT = 500;
const SPEEDS = [0.1, 0.25, 0.5, 1, 2, 5, 10];
// As metrics/recording_selectors.py paces a replay: a steady beat without timestamps, and the longest pause kept.
const DEFAULT_GAP_SECONDS = 1 / 20;
const MAX_GAP_SECONDS = 1;
const TYPING = new Set(["INPUT", "SELECT", "TEXTAREA"]);

function entries(value) {
  if (Array.isArray(value)) return value.map((v, i) => [String(i), v]);
  if (value && typeof value === "object") return Object.entries(value);
  return [];
}

/** One number for the state value, as the decision panel shows it (the mean of several). */
function stateValueOf(value) {
  if (isNum(value)) return value;
  const numbers = entries(value).map(([, v]) => v).filter(isNum);
  return numbers.length ? numbers.reduce((a, b) => a + b, 0) / numbers.length : null;
}

function speedText(speed) {
  return `${Number(speed.toFixed(2)).toLocaleString("en-US")}×`;
}

function decodeBase64(data) {
  const text = atob(data);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i += 1) bytes[i] = text.charCodeAt(i);
  return bytes;
}

/** The recorded episode nearest ``episode`` (the lower one on a tie), or null. */
export function nearestEpisode(episodes, episode) {
  let best = null;
  for (const candidate of episodes) {
    const distance = Math.abs(candidate - episode);
    if (best == null || distance < Math.abs(best - episode) || (distance === Math.abs(best - episode) && candidate < best)) best = candidate;
  }
  return best;
}

/**
 * An exported episode as the panes read it: its distinct step numbers in order, and for each
 * the latest decision and frame at or before it and its time from the first step. Records
 * without a step belong to the step recorded before them.
 */
export function timelineFrom(exported) {
  const slots = new Map();
  const slot = (step) => {
    if (!slots.has(step)) slots.set(step, { decision: null, frame: null, decisionTime: null, frameTime: null });
    return slots.get(step);
  };
  let previous = 0;
  for (const decision of exported.decisions || []) {
    const step = Number.isInteger(decision.step) ? decision.step : previous;
    previous = step;
    const entry = slot(step);
    entry.decision = decision;
    if (isNum(decision.timestamp) && entry.decisionTime == null) entry.decisionTime = decision.timestamp;
  }
  previous = 0;
  for (const frame of exported.frames || []) {
    const step = Number.isInteger(frame.step) ? frame.step : previous;
    previous = step;
    const entry = slot(step);
    if (frame.data) entry.frame = frame;
    if (isNum(frame.timestamp) && entry.frameTime == null) entry.frameTime = frame.timestamp;
  }
  const steps = [...slots.keys()].sort((a, b) => a - b);
  // Decisions carry the trainer's own clock; frames the time they were sent. Use one of them.
  const useDecisions = steps.some((step) => slots.get(step).decisionTime != null);
  const decisions = [];
  const frames = [];
  const offsets = [];
  let decision = null;
  let frame = null;
  let start = null;
  let last = null;
  for (const step of steps) {
    const entry = slots.get(step);
    decision = entry.decision || decision;
    frame = entry.frame || frame;
    decisions.push(decision);
    frames.push(frame);
    const time = useDecisions ? entry.decisionTime : entry.frameTime;
    let offset;
    if (time == null) offset = last == null ? 0 : last + DEFAULT_GAP_SECONDS;
    else {
      if (start == null) start = time;
      offset = time - start;
    }
    if (last != null && offset < last) offset = last;
    offsets.push(offset);
    last = offset;
  }
  return { episode: exported.episode, steps, decisions, frames, offsets };
}

class Pane {
  constructor(run) {
    this.run = run;
    this.episodes = null; // recorded episode numbers, ascending, once listed
    this.timeline = null;
    this.token = 0;
    this.shownPosition = null;
    this.shownFrame = null;
    const fieldId = `sync-episode-${run.index}`;
    const listId = `sync-episodes-${run.index}`;
    this.input = h("input", { type: "number", id: fieldId, class: "sync-episode-input", min: "0", step: "1", list: listId, inputmode: "numeric" });
    this.datalist = h("datalist", { id: listId });
    this.form = h("form", { class: "sync-pane-pick" },
      h("label", { for: fieldId, class: "small" }, "Episode"), this.input, this.datalist,
      h("button", { type: "submit", class: "btn btn-sm" }, "Show"));
    this.recorded = h("p", { class: "muted small sync-recorded" }, "Listing recorded episodes…");
    this.note = h("p", { class: "small sync-note", role: "status" });
    this.statusEl = h("span", { class: "badge sync-status" }, "—");
    this.canvas = h("canvas", { class: "sync-canvas", width: "240", height: "150", "aria-label": `Game view of ${run.label}` });
    this.empty = h("p", { class: "muted small sync-empty" }, "No frame yet.");
    this.frameMeta = h("span", { class: "muted small mono sync-frame-meta" });
    this.frames = new FrameView(this.canvas, { empty: this.empty, meta: this.frameMeta, rate: h("span") });
    this.bars = h("ul", { class: "sync-bars", "aria-label": `Action probabilities of ${run.label}` });
    this.value = h("p", { class: "muted small mono sync-value" });
    this.decisionMeta = h("span", { class: "muted small mono sync-decision-meta" });
    this.stepEl = h("output", { class: "mono sync-step" }, "—");
    this.el = h("article", { class: "sync-pane", dataset: { run: String(run.index), session: run.id, state: "listing", status: "" } },
      h("div", { class: "sync-pane-head" },
        h("span", { class: `run-swatch run-color-${run.index}`, "aria-hidden": "true" }),
        h("span", { class: "run-name" }, run.label),
        this.statusEl),
      this.form, this.recorded, this.note,
      h("div", { class: "sync-game" }, this.canvas, this.empty),
      h("div", { class: "sync-pane-meta" }, this.frameMeta, this.stepEl),
      h("div", { class: "sync-decision" }, this.bars, this.value, this.decisionMeta));
  }

  get length() {
    return this.timeline ? this.timeline.steps.length : 0;
  }

  setNote(text, { error = false } = {}) {
    setText(this.note, text);
    this.note.classList.toggle("is-error", error);
  }

  async list() {
    let result;
    try {
      result = await api("GET", `sessions/${encodeURIComponent(this.run.id)}/recordings/?ordering=episode&limit=${LIST_LIMIT}`);
    } catch {
      result = null;
    }
    if (!result || !result.ok) {
      this.episodes = [];
      this.el.dataset.state = "error";
      setText(this.recorded, "");
      this.setNote(result ? errorMessage(result, "Cannot list this run's recorded episodes.") : "Cannot list this run's recorded episodes.", { error: true });
      return;
    }
    this.episodes = (result.data.results || []).map((row) => row.episode).sort((a, b) => a - b);
    this.datalist.replaceChildren(...this.episodes.map((episode) => h("option", { value: String(episode) })));
    this.el.dataset.recorded = String(this.episodes.length);
    if (!this.episodes.length) {
      this.el.dataset.state = "none";
      this.input.disabled = true;
      this.form.querySelector("button").disabled = true;
      setText(this.recorded, "");
      this.setNote("This run has no recorded episodes: nothing to replay.");
      return;
    }
    this.el.dataset.state = "idle";
    const shown = this.episodes.length > 12 ? [...this.episodes.slice(0, 6), "…", ...this.episodes.slice(-5)] : this.episodes;
    setText(this.recorded, `Recorded: ${shown.join(", ")}`);
  }

  /** Load this run's recording of ``episode`` (or the nearest one recorded); true when it has steps. */
  async load(episode) {
    if (!this.episodes || !this.episodes.length) return false;
    const chosen = nearestEpisode(this.episodes, episode);
    const token = ++this.token;
    this.input.value = String(chosen);
    this.el.dataset.state = "loading";
    this.el.dataset.episode = String(chosen);
    this.el.dataset.nearest = chosen === episode ? "" : "1";
    this.setNote(`Loading episode ${chosen}…`);
    let result;
    try {
      result = await api("GET", `sessions/${encodeURIComponent(this.run.id)}/recordings/${chosen}.json`);
    } catch {
      result = null;
    }
    if (token !== this.token) return false;
    this.timeline = null;
    this.shownPosition = null;
    if (!result || !result.ok) {
      this.el.dataset.state = "error";
      this.setNote(result ? errorMessage(result, `Cannot load episode ${chosen}.`) : `Cannot load episode ${chosen}.`, { error: true });
      return false;
    }
    const timeline = timelineFrom(result.data);
    if (!timeline.steps.length) {
      this.el.dataset.state = "error";
      this.setNote(`Episode ${chosen} has no recorded steps.`, { error: true });
      return false;
    }
    this.timeline = timeline;
    this.el.dataset.state = "ready";
    this.el.dataset.length = String(timeline.steps.length);
    this.setNote(chosen === episode
      ? `Episode ${chosen}`
      : `Episode ${episode} is not recorded here: showing the nearest recorded, episode ${chosen}.`);
    return true;
  }

  /** Seconds (at 1x) from ``position`` to the next step, or null past this episode's end. */
  gapAfter(position) {
    if (!this.timeline || position + 1 >= this.length) return null;
    const { offsets } = this.timeline;
    return Math.min(MAX_GAP_SECONDS, Math.max(0, offsets[position + 1] - offsets[position]));
  }

  render(state) {
    if (!this.timeline) {
      this.el.dataset.status = "";
      setText(this.statusEl, this.el.dataset.state === "none" ? "no recording" : "—");
      return;
    }
    const view = clock.paneView(state, this.length);
    this.el.dataset.status = view.status;
    setText(this.statusEl, view.status);
    this.statusEl.classList.toggle("badge-live", view.status === "playing");
    const position = view.position;
    setText(this.stepEl, `${position} / ${this.length - 1}`);
    if (position === this.shownPosition) return;
    this.shownPosition = position;
    this.el.dataset.step = String(position);
    this.el.dataset.recordedStep = String(this.timeline.steps[position]);
    const frame = this.timeline.frames[position];
    if (frame && frame !== this.shownFrame) {
      this.shownFrame = frame;
      if (!frame.bytes) frame.bytes = decodeBase64(frame.data);
      this.frames.show({ mime: frame.mime, episode: this.timeline.episode, step: frame.step }, frame.bytes);
    }
    this.showDecision(this.timeline.decisions[position]);
  }

  showDecision(decision) {
    if (!decision) {
      this.bars.replaceChildren();
      setText(this.value, "");
      setText(this.decisionMeta, "No decision yet");
      return;
    }
    const selected = decision.selected_action;
    // Action names are the trainer's text: text nodes only.
    this.bars.replaceChildren(...entries(decision.action_probabilities).map(([name, p], index) => {
      const share = isNum(p) ? Math.max(0, Math.min(1, p)) : 0;
      const chosen = selected != null && (String(selected) === name || selected === index);
      const fill = h("span", { class: "bar-fill" });
      fill.style.width = `${(share * 100).toFixed(1)}%`;
      return h("li", { class: `bar${chosen ? " is-chosen" : ""}`, dataset: { action: name, p: share.toFixed(4) }, "aria-label": `${name}: ${(share * 100).toFixed(1)}%${chosen ? ", chosen" : ""}` },
        h("span", { class: "bar-label" }, name, h("span", { class: "bar-chosen" }, "chosen")), h("span", { class: "bar-track" }, fill), h("span", { class: "bar-pct mono" }, `${(share * 100).toFixed(1)}%`));
    }));
    const value = stateValueOf(decision.state_values);
    setText(this.value, value == null ? "" : `V(s) = ${significant(value, 4)}`);
    setText(this.decisionMeta, decision.step != null ? `decision at step ${decision.step}` : "");
  }
}

export class SyncReplayPlayer {
  constructor() {
    this.state = clock.initialState();
    this.panes = [];
    this.timer = 0;
    this.pick = 0;
    this.listed = null;
  }

  mount(stage, runs) {
    this.stage = stage;
    this.panes = runs.map((run, index) => new Pane({ ...run, index }));
    const button = (id, label, title, icon) => h("button", { class: "btn btn-sm", type: "button", id, "aria-label": label, title, disabled: true }, h("span", { "aria-hidden": "true" }, icon));
    this.backButton = button("sync-step-back", "Step back", "Step back (←)", "\u25C0\u25AE");
    this.playButton = button("sync-play", "Play", "Play or pause (space)", "\u25B6");
    this.playButton.classList.add("btn-primary");
    this.stopButton = button("sync-stop", "Stop", "Stop: back to the first step", "\u25A0");
    this.forwardButton = button("sync-step-forward", "Step forward", "Step forward (→)", "\u25AE\u25B6");
    this.seekInput = h("input", { type: "range", class: "replay-seek", id: "sync-seek", min: "0", max: "0", step: "1", value: "0", disabled: true });
    this.positionEl = h("output", { class: "replay-step mono", id: "sync-position", for: "sync-seek" }, "—");
    this.speedSelect = h("select", { id: "sync-speed" }, SPEEDS.map((speed) => h("option", { value: String(speed), selected: speed === 1 }, speedText(speed))));
    this.loopInput = h("input", { type: "checkbox", id: "sync-loop" });
    this.statusEl = h("p", { class: "muted small replay-status", id: "sync-status", role: "status", "aria-live": "polite" }, "Pick an episode: click a graph on the episode axis, or enter one for a run.");
    this.controls = h("div", { class: "replay-panel sync-controls", id: "sync-controls", role: "group", tabindex: "0", "aria-label": "Synchronized replay controls (space plays or pauses, arrows step)", dataset: { status: "", position: "" } },
      h("div", { class: "replay-row replay-transport" }, this.backButton, this.playButton, this.stopButton, this.forwardButton,
        h("label", { class: "sr-only", for: "sync-seek" }, "Step from the episodes' start"), this.seekInput, this.positionEl),
      h("div", { class: "replay-row replay-options" },
        h("label", { for: "sync-speed" }, "Speed"), this.speedSelect,
        h("label", { class: "replay-check" }, this.loopInput, " Loop")),
      this.statusEl);
    this.grid = h("div", { class: "sync-panes", dataset: { count: String(this.panes.length) } }, this.panes.map((pane) => pane.el));
    stage.replaceChildren(
      h("p", { class: "muted small sync-align" }, "Panes line up by step from each episode's start (step 0 is every episode's first recorded step); a shorter episode holds its last step, marked ended, while the longer ones go on."),
      this.controls, this.grid);
    stage.dataset.state = "mounted";
    this.wire();
    this.listed = Promise.all(this.panes.map((pane) => pane.list())).then(() => {
      stage.dataset.listed = "1";
    });
  }

  wire() {
    this.playButton.addEventListener("click", () => this.togglePlay());
    this.stopButton.addEventListener("click", () => this.command("stop"));
    this.backButton.addEventListener("click", () => this.command("step", -1));
    this.forwardButton.addEventListener("click", () => this.command("step", 1));
    this.seekInput.addEventListener("input", () => this.command("seek", parseInt(this.seekInput.value, 10)));
    this.speedSelect.addEventListener("change", () => this.command("speed", Number(this.speedSelect.value)));
    this.loopInput.addEventListener("change", () => this.command("loop", this.loopInput.checked));
    this.stage.addEventListener("keydown", (event) => {
      if (event.ctrlKey || event.metaKey || event.altKey || TYPING.has(event.target.tagName)) return;
      if (event.key === " " && event.target.tagName !== "BUTTON") {
        if (!event.repeat) this.togglePlay();
      } else if (event.key === "ArrowLeft") this.command("step", -1);
      else if (event.key === "ArrowRight") this.command("step", 1);
      else return;
      event.preventDefault();
    });
    for (const pane of this.panes) {
      pane.form.addEventListener("submit", (event) => {
        event.preventDefault();
        const episode = parseInt(pane.input.value, 10);
        if (Number.isInteger(episode)) this.loadPanes([pane], episode);
      });
    }
  }

  /** The page's pick: every run's recording of ``episode`` (or its nearest). */
  async showEpisode(episode) {
    await this.listed;
    await this.loadPanes(this.panes, episode);
  }

  async loadPanes(panes, episode) {
    const pick = ++this.pick;
    this.halt();
    this.stage.dataset.state = "loading";
    await Promise.all(panes.map((pane) => pane.load(episode)));
    if (pick !== this.pick) return;
    const length = Math.max(0, ...this.panes.map((pane) => pane.length));
    const episodes = this.panes.filter((pane) => pane.timeline).map((pane) => pane.timeline.episode);
    if (!length) {
      this.state = clock.stop(clock.initialState({ speed: this.state.speed, loop: this.state.loop }));
      this.stage.dataset.state = "empty";
    } else {
      this.state = clock.select(this.state, episodes.join(","), length);
      this.stage.dataset.state = "ready";
    }
    this.render();
  }

  togglePlay() {
    if (this.state.episode == null) return;
    this.command(this.state.status === "playing" ? "pause" : "play");
  }

  command(action, value) {
    if (this.state.episode == null && !["speed", "loop", "stop"].includes(action)) return;
    let next;
    try {
      next = clock.apply(this.state, action, value);
    } catch (error) {
      if (error instanceof clock.SyncReplayError) {
        setText(this.statusEl, error.detail);
        return;
      }
      throw error;
    }
    this.state = next;
    this.halt();
    this.render();
    this.schedule();
  }

  halt() {
    clearTimeout(this.timer);
    this.timer = 0;
  }

  /** Seconds (at 1x) to the next position: the slowest episode still going sets the beat. */
  delayAfter(position) {
    const gaps = this.panes.map((pane) => pane.gapAfter(position)).filter((gap) => gap != null);
    return gaps.length ? Math.max(...gaps) : DEFAULT_GAP_SECONDS;
  }

  schedule() {
    if (this.state.status !== "playing") return;
    const delay = (this.delayAfter(this.state.position) / this.state.speed) * 1000;
    this.timer = setTimeout(() => {
      this.timer = 0;
      this.state = clock.advance(this.state);
      this.render();
      this.schedule();
    }, delay);
  }

  render() {
    const state = this.state;
    const selected = state.episode != null;
    for (const control of [this.backButton, this.playButton, this.stopButton, this.forwardButton, this.seekInput]) control.disabled = !selected;
    this.seekInput.max = String(Math.max(0, state.length - 1));
    this.seekInput.value = String(state.position);
    setText(this.positionEl, selected ? `${state.position} / ${state.length - 1}` : "—");
    const playing = state.status === "playing";
    this.playButton.setAttribute("aria-label", playing ? "Pause" : "Play");
    setText(this.playButton.firstChild, playing ? "\u275A\u275A" : "\u25B6");
    this.speedSelect.value = String(state.speed);
    this.loopInput.checked = state.loop;
    this.controls.dataset.status = selected ? state.status : "";
    this.controls.dataset.position = selected ? String(state.position) : "";
    this.controls.dataset.speed = String(state.speed);
    if (selected) {
      const parts = [`Step ${state.position} of ${state.length - 1}`, state.status, speedText(state.speed)];
      if (state.loop) parts.push("looping");
      setText(this.statusEl, parts.join(" · "));
    } else if (this.stage.dataset.state === "empty") {
      setText(this.statusEl, "None of these runs recorded an episode to replay.");
    }
    for (const pane of this.panes) pane.render(state);
  }
}

function join(comparison) {
  if (comparison && comparison.replay) comparison.replay.attach(new SyncReplayPlayer());
}

if (window.spectatorComparison) join(window.spectatorComparison);
else document.addEventListener("comparison:ready", (event) => join(event.detail), { once: true });
