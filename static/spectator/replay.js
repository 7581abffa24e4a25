// Replay on the room page: the Live / Replay switch, a recorded episode's controls, and what
// the game view, decision panel and overlay show while replaying. Controls go over the room
// socket ({"type": "replay", "action": ...}); the server answers with replay_state and
// streams the episode's bot_decision messages and frames marked "replay": true. Live
// decisions and frames are held back while replaying; live metrics keep the graphs going.
import { api } from "./api.js";
import { $, h, setText, toast } from "./dom.js";

const LIST_LIMIT = 200;
// The room socket allows 20 messages a second: dragging the slider or holding a key sends fewer.
const SEEK_EVERY_MS = 150;
const STEP_EVERY_MS = 100;
const STATUS_TEXT = { stopped: "stopped", playing: "playing", paused: "paused", ended: "ended" };

function number(value, digits = 2) {
  return typeof value === "number" && Number.isFinite(value) ? Number(value.toFixed(digits)).toLocaleString("en-US") : "—";
}

export class ReplayPanel {
  /** @param live the LiveRoom (its socket, decision panel, frame view and overlay) */
  constructor(live, data) {
    this.live = live;
    this.sessionId = data.training_session.id;
    this.root = $("#replay");
    this.panel = $("#replay-panel");
    this.select = $("#replay-episode");
    this.seek = $("#replay-seek");
    this.stepOut = $("#replay-step");
    this.status = $("#replay-status");
    this.leaderEl = $("#replay-leader");
    this.playButton = $("#replay-play");
    this.download = $("#replay-download");
    this.follow = $("#replay-follow");
    this.lead = $("#replay-lead");
    this.mode = "live";
    this.state = null;
    this.leader = null;
    this.lastLiveFrame = null;
    this.lastSeekSent = 0;
    this.seekTimer = 0;
    this.lastStepSent = 0;
    this.lastDecisionStep = null;
    this.autoFollow = this.root.dataset.replayRoom === "1";
    this.wire();
  }

  // --- what arrives on the socket -------------------------------------------------------------

  /** Handle a text message if it is the replay's; true when the live handlers must not see it. */
  intercept(message) {
    switch (message.type) {
      case "replay_state":
        this.onState(message);
        return true;
      case "replay_leader":
        this.onLeader(message.leader, message.state);
        return true;
      case "snapshot":
        this.onSnapshot();
        return false;
      case "bot_decision":
        if (message.replay) {
          if (this.mode === "replay") this.showDecision(message);
          return true;
        }
        return this.mode === "replay";
      case "error":
        if (message.field && this.mode === "replay") {
          toast(this.live.toastEl, message.message || "That replay command did not work.", { error: true });
          return true;
        }
        return false;
      default:
        return false;
    }
  }

  /** Handle a binary frame if it is the replay's (or a live one held back); true when consumed. */
  interceptFrame(header, bytes) {
    if (header.replay) {
      if (this.mode === "replay") {
        this.live.frames.show(header, bytes);
        this.showStep(header.step);
      }
      return true;
    }
    if (this.mode !== "replay") return false;
    this.lastLiveFrame = { header, bytes: bytes.slice() };
    return true;
  }

  onSnapshot() {
    if (this.mode === "replay") {
      // A new connection has a fresh player: pick up where this page was.
      this.send("state");
      if (this.follow.checked) this.send("follow", { follow: true });
      else if (this.state && this.state.episode != null) this.restore(this.state);
      if (this.lead && this.lead.checked) this.send("lead", { lead: true });
    } else if (this.autoFollow) {
      this.autoFollow = false;
      this.follow.checked = true;
      this.setMode("replay");
    }
  }

  restore(state) {
    this.send("select", { episode: state.episode });
    this.send("speed", { speed: state.speed });
    if (state.loop) this.send("loop", { loop: true });
    if (state.step != null && state.step !== state.first_step) this.send("seek", { step: state.step });
  }

  onState(state) {
    this.state = state;
    this.onLeader(state.leader, null);
    const selected = state.episode != null;
    if (selected && state.metrics) this.live.overlay.pin(state.metrics);
    this.follow.checked = state.following;
    if (this.lead) this.lead.checked = state.leading;
    $("#replay-loop").checked = state.loop;
    const speed = this.speedOption(state.speed);
    if (speed) $("#replay-speed").value = speed;
    for (const id of ["#replay-step-back", "#replay-stop", "#replay-step-forward"]) $(id).disabled = !selected;
    this.playButton.disabled = !selected;
    this.seek.disabled = !selected;
    if (selected) {
      this.seek.min = String(state.first_step);
      this.seek.max = String(state.last_step);
      this.ensureOption(state.episode, state.recording);
      this.select.value = String(state.episode);
      this.download.hidden = false;
      this.download.href = this.exportUrl(state.episode);
    } else {
      this.download.hidden = true;
    }
    this.showStep(state.step);
    const playing = state.status === "playing";
    this.playButton.setAttribute("aria-label", playing ? "Pause" : "Play");
    setText($("#replay-play-icon"), playing ? "\u275A\u275A" : "\u25B6");
    this.renderStatus();
  }

  onLeader(leader, leaderState) {
    this.leader = leader || null;
    const el = this.leaderEl;
    if (!this.leader || (this.state && this.state.leading)) {
      el.hidden = true;
      setText(el, "");
      return;
    }
    el.hidden = false;
    const what = leaderState && leaderState.episode != null ? ` episode ${leaderState.episode}` : "";
    // The leader's name is user text: textContent only.
    setText(el, `${this.leader.display_name} leads a replay${what}.`);
  }

  showDecision(message) {
    // The state-value sparkline follows the steps in order: a jump starts it afresh.
    if (this.lastDecisionStep == null || message.step !== this.lastDecisionStep + 1) this.live.decisions.values = [];
    this.lastDecisionStep = message.step;
    this.live.decisions.update(message);
    this.showStep(message.step);
  }

  showStep(step) {
    if (step == null) {
      setText(this.stepOut, "—");
      return;
    }
    if (document.activeElement !== this.seek || this.mode !== "replay") this.seek.value = String(step);
    const last = this.state && this.state.last_step != null ? this.state.last_step : step;
    setText(this.stepOut, `${step} / ${last}`);
    this.root.dataset.step = String(step);
  }

  renderStatus() {
    const state = this.state;
    if (!state || state.episode == null) {
      this.status.dataset.status = "";
      setText(this.status, "Choose a recorded episode to replay it.");
      return;
    }
    this.status.dataset.status = state.status;
    const parts = [`Episode ${state.episode}`, STATUS_TEXT[state.status] || state.status, `${number(state.speed)}×`];
    if (state.loop) parts.push("looping");
    if (state.following && state.leader) parts.push(`following ${state.leader.display_name}`);
    else if (state.following) parts.push("waiting for the owner to lead");
    if (state.leading) parts.push("you lead");
    setText(this.status, parts.join(" · "));
  }

  // --- the controls ------------------------------------------------------------------------------

  wire() {
    for (const input of document.querySelectorAll("input[name=view-mode]")) {
      input.addEventListener("change", () => input.checked && this.setMode(input.value));
    }
    this.select.addEventListener("change", () => {
      const episode = parseInt(this.select.value, 10);
      if (Number.isInteger(episode)) this.send("select", { episode });
    });
    $("#replay-refresh").addEventListener("click", () => this.loadEpisodes());
    this.playButton.addEventListener("click", () => this.togglePlay());
    $("#replay-stop").addEventListener("click", () => this.send("stop"));
    $("#replay-step-back").addEventListener("click", () => this.step(-1));
    $("#replay-step-forward").addEventListener("click", () => this.step(1));
    this.seek.addEventListener("input", () => this.seekSoon());
    this.seek.addEventListener("change", () => this.seekNow());
    $("#replay-speed").addEventListener("change", (event) => this.send("speed", { speed: Number(event.target.value) }));
    $("#replay-loop").addEventListener("change", (event) => this.send("loop", { loop: event.target.checked }));
    this.follow.addEventListener("change", () => this.send("follow", { follow: this.follow.checked }));
    if (this.lead) this.lead.addEventListener("change", () => this.send("lead", { lead: this.lead.checked }));
    // Shortcuts inside the replay controls: k plays or pauses, "," and "." step.
    this.panel.addEventListener("keydown", (event) => {
      if (event.ctrlKey || event.metaKey || event.altKey || event.target.tagName === "SELECT") return;
      if (event.key === "k" && !event.repeat) this.togglePlay();
      else if (event.key === ",") this.step(-1, { repeat: event.repeat });
      else if (event.key === ".") this.step(1, { repeat: event.repeat });
      else return;
      event.preventDefault();
    });
  }

  setMode(mode) {
    if (mode === this.mode) return;
    this.mode = mode;
    this.root.dataset.mode = mode;
    this.panel.hidden = mode !== "replay";
    $(`#view-${mode}`).checked = true;
    document.body.dataset.view = mode;
    if (mode === "replay") {
      this.send("state");
      if (this.follow.checked) this.send("follow", { follow: true });
      this.loadEpisodes();
      return;
    }
    this.send("exit");
    this.state = null;
    this.live.overlay.unpin();
    this.live.decisions.values = [];
    if (this.lastLiveFrame) this.live.frames.show(this.lastLiveFrame.header, this.lastLiveFrame.bytes);
    this.lastLiveFrame = null;
  }

  togglePlay() {
    if (!this.state || this.state.episode == null) return;
    this.send(this.state.status === "playing" ? "pause" : "play");
  }

  /** Step; a held-down key repeats at most every STEP_EVERY_MS. */
  step(delta, { repeat = false } = {}) {
    const now = performance.now();
    if (repeat && now - this.lastStepSent < STEP_EVERY_MS) return;
    this.lastStepSent = now;
    this.send("step", { delta });
  }

  seekSoon() {
    const wait = SEEK_EVERY_MS - (performance.now() - this.lastSeekSent);
    clearTimeout(this.seekTimer);
    if (wait <= 0) this.seekNow();
    else this.seekTimer = setTimeout(() => this.seekNow(), wait);
  }

  seekNow() {
    clearTimeout(this.seekTimer);
    const step = parseInt(this.seek.value, 10);
    if (!Number.isInteger(step) || !this.state || this.state.episode == null) return;
    if (this.state.step === step && this.state.action === "seek") return;
    this.lastSeekSent = performance.now();
    this.send("seek", { step });
  }

  send(action, fields = {}) {
    this.live.send({ type: "replay", action, ...fields });
  }

  // --- the list of recorded episodes -------------------------------------------------------------

  exportUrl(episode) {
    return `/api/v1/sessions/${encodeURIComponent(this.sessionId)}/recordings/${episode}.json`;
  }

  async loadEpisodes() {
    let result;
    try {
      result = await api("GET", `sessions/${encodeURIComponent(this.sessionId)}/recordings/?limit=${LIST_LIMIT}`);
    } catch {
      toast(this.live.toastEl, "Cannot load the recorded episodes; try Refresh.", { error: true });
      return;
    }
    if (!result.ok) {
      toast(this.live.toastEl, "Cannot load the recorded episodes.", { error: true });
      return;
    }
    const rows = result.data.results || [];
    const chosen = this.select.value;
    const placeholder = this.select.options[0];
    placeholder.textContent = rows.length ? "Choose a recorded episode…" : "No recorded episodes yet";
    this.select.replaceChildren(placeholder, ...rows.map((row) => this.option(row)));
    if (this.state && this.state.episode != null) this.ensureOption(this.state.episode, this.state.recording);
    if (chosen) this.select.value = chosen;
    this.select.dataset.loaded = String(rows.length);
  }

  option(row) {
    const parts = [`Episode ${row.episode}`, `${row.steps.toLocaleString("en-US")} steps`];
    if (row.reward != null) parts.push(`reward ${number(row.reward)}`);
    if (row.frames) parts.push(`${row.frames.toLocaleString("en-US")} frames`);
    return h("option", { value: String(row.episode) }, parts.join(" · "));
  }

  ensureOption(episode, recording) {
    const value = String(episode);
    if (Array.from(this.select.options).some((option) => option.value === value)) return;
    this.select.append(recording ? this.option(recording) : h("option", { value }, `Episode ${episode}`));
  }

  speedOption(speed) {
    const value = Array.from($("#replay-speed").options).find((option) => Number(option.value) === speed);
    if (value) return value.value;
    const option = h("option", { value: String(speed) }, `${number(speed)}×`);
    $("#replay-speed").append(option);
    return option.value;
  }
}
