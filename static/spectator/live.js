// The live room: one WebSocket to /ws/rooms/<CODE>/ with automatic reconnect (exponential
// backoff; a fresh ticket from the join API each time), the snapshot's history merged by
// (stream, seq) so a reconnect backfills what was missed without doubling anything.
import { apiOrOffline, errorMessage, roomPath } from "./api.js";
import { GraphBoard } from "./charts.js";
import { DecisionPanel } from "./decisions.js";
import { $, setText, toast } from "./dom.js";
import { FrameView, parseFrame } from "./frames.js";
import { MetricsOverlay } from "./overlay.js";
import { renderRequests, renderSpectators } from "./people.js";
import { ReplayPanel } from "./replay.js";

const RETRY_BASE_MS = 500;
const RETRY_MAX_MS = 15000;
const PING_MS = 25000;
const MAX_POINTS_KEPT = 2000;
const MAX_KEYS_REMEMBERED = 50000;
// Close codes (DESIGN.md section 4) after which reconnecting cannot help.
const FINAL_CLOSES = { 4403: "refused", 4404: "room_not_found", 4409: "room_full", 4410: "room_closed" };

class NoGraphs {
  constructor() {
    this.graphs = new Map();
  }

  configure() {}

  add() {}

  reset() {}
}

export class LiveRoom {
  /**
   * @param data   the page's room data (json_script)
   * @param rejoin async () => join result ({kind: "admitted", ticket} | {kind: "offline"|"throttled"} | refusal)
   * @param onGone (refusal) => void: the room can no longer be watched from here
   */
  constructor(data, { rejoin, onGone }) {
    this.data = data;
    this.code = data.code;
    this.rejoin = rejoin;
    this.onGone = onGone;
    this.ws = null;
    this.stopped = false;
    this.attempt = 0;
    this.retryTimer = 0;
    this.live = false;
    this.viewer = null;
    this.points = [];
    this.keys = new Set();
    this.keyOrder = [];
    this.pending = new Map();
    this.spectators = [];
    this.speed = "live";

    this.connEl = $("#conn-state");
    this.connText = $("#conn-text");
    this.toastEl = $("#toast");
    this.overlay = new MetricsOverlay($("#overlay"), { totalEpisodes: data.training_session.total_episodes });
    this.overlay.setAlgorithm(data.training_session.algorithm);
    // A room without performance graphs builds none (the section is hidden).
    this.graphs = data.flags.graphs ? new GraphBoard($("#graphs"), { historyUrl: data.training_session.history_url }) : new NoGraphs();
    this.decisions = new DecisionPanel($("#decisions"));
    this.frames = new FrameView($("#game-canvas"), { empty: $("#game-empty"), meta: $("#frame-meta"), rate: $("#frame-rate") });
    this.replay = new ReplayPanel(this, data);
    this.wireControls();
    window.addEventListener("online", () => this.retryNow());
    this.pinger = setInterval(() => this.send({ type: "ping", t: Date.now() }), PING_MS);
  }

  wireControls() {
    for (const input of document.querySelectorAll("input[name=speed]")) {
      input.addEventListener("change", () => {
        if (!input.checked) return;
        this.speed = input.value;
        this.sendSpeed();
      });
    }
    const admitAll = $("#admit-all");
    if (admitAll) admitAll.addEventListener("click", () => this.send({ type: "admit_all" }));
    const lock = $("#lock-toggle");
    if (lock) {
      this.showLocked(Boolean(this.data.locked));
      lock.addEventListener("click", () => this.toggleLock());
    }
  }

  /** Lock (nobody new gets in, those inside stay) or unlock, through the API. */
  async toggleLock() {
    const lock = $("#lock-toggle");
    const locking = !this.locked;
    lock.disabled = true;
    const result = await apiOrOffline("POST", roomPath(this.code, locking ? "lock/" : "unlock/"));
    lock.disabled = false;
    if (result.ok) this.showLocked(locking);
    else toast(this.toastEl, errorMessage(result, "Could not change the lock; try again."), { error: true });
  }

  showLocked(locked) {
    this.locked = locked;
    const lock = $("#lock-toggle");
    lock.textContent = locked ? "Unlock room" : "Lock room";
    lock.setAttribute("aria-pressed", String(locked));
    $("#lock-state").hidden = !locked;
  }

  start(ticket) {
    this.connect(ticket);
  }

  /** Watch again after ``gone`` (joined again after a kick, approved again…), keeping the page's data. */
  resume(ticket) {
    this.stopped = false;
    this.attempt = 0;
    clearInterval(this.pinger);
    this.pinger = setInterval(() => this.send({ type: "ping", t: Date.now() }), PING_MS);
    this.connect(ticket);
  }

  // --- connection ------------------------------------------------------------------------

  async connect(ticket = null) {
    if (this.stopped) return;
    this.setConn("connecting", this.attempt ? "Reconnecting…" : "Connecting…");
    if (!ticket) {
      const result = await this.rejoin();
      if (this.stopped) return;
      if (result.kind === "admitted") ticket = result.ticket;
      else if (result.kind === "offline" || result.kind === "throttled") return this.retry(result.retryAfter);
      else return this.gone(result);
    }
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/ws/rooms/${encodeURIComponent(this.code)}/?ticket=${encodeURIComponent(ticket)}`);
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    this.lastError = null;
    this.closedReason = null;
    ws.onopen = () => this.sendSpeed();
    ws.onmessage = (event) => {
      if (ws !== this.ws) return;
      if (typeof event.data === "string") this.onMessage(JSON.parse(event.data));
      else this.onFrame(event.data);
    };
    ws.onclose = (event) => {
      if (ws !== this.ws) return;
      this.ws = null;
      this.onClose(event.code);
    };
  }

  onClose(code) {
    this.live = false;
    if (this.stopped) return;
    const reason = this.closedReason;
    if (reason === "kicked" || reason === "banned") return this.gone({ code: reason });
    if (reason === "suspended") return this.gone({ code: "timed_out" });
    if (reason === "closed" || reason === "expired") return this.gone({ code: `room_${reason}` });
    if (code in FINAL_CLOSES) {
      const error = this.lastError || {};
      const refusal = code === 4410 ? error.code || "room_closed" : code === 4403 ? error.code || "refused" : FINAL_CLOSES[code];
      return this.gone({ code: refusal, detail: error.message });
    }
    // 4401 (a spent ticket), 4408 (fell behind), 4429, network drops: join again and reconnect.
    this.retry(code === 4401 || code === 4408 ? 0 : null);
  }

  retry(afterSeconds = null) {
    const delay = afterSeconds != null
      ? afterSeconds * 1000
      : Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** this.attempt) * (0.8 + Math.random() * 0.4);
    this.attempt += 1;
    const until = Date.now() + delay;
    const tick = () => {
      const left = Math.ceil((until - Date.now()) / 1000);
      this.setConn("reconnecting", navigator.onLine === false ? "Offline; waiting for the network…" : left > 0 ? `Reconnecting in ${left} s…` : "Reconnecting…");
    };
    tick();
    clearInterval(this.countdown);
    this.countdown = setInterval(tick, 1000);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      clearInterval(this.countdown);
      this.connect();
    }, delay);
  }

  retryNow() {
    if (this.stopped || this.ws || !this.retryTimer) return;
    clearTimeout(this.retryTimer);
    clearInterval(this.countdown);
    this.retryTimer = 0;
    this.connect();
  }

  gone(refusal) {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.countdown);
    clearInterval(this.pinger);
    if (this.ws) this.ws.close();
    this.setConn("offline", "Disconnected");
    this.onGone(refusal);
  }

  setConn(state, text) {
    this.connEl.dataset.state = state;
    setText(this.connText, text);
  }

  send(message) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  sendSpeed() {
    this.send(this.speed === "live" ? { type: "set_speed", mode: "live" } : { type: "set_speed", max_hz: Number(this.speed) });
  }

  // --- messages ------------------------------------------------------------------------------

  onMessage(message) {
    if (this.replay.intercept(message)) return;
    const handler = this.handlers[message.type];
    if (handler) handler.call(this, message);
  }

  onFrame(buffer) {
    try {
      const { header, bytes } = parseFrame(buffer);
      if (this.replay.interceptFrame(header, bytes)) return;
      this.frames.show(header, bytes);
    } catch {
      // A malformed frame is skipped; the next one replaces it.
    }
  }

  /** Remember a point's (stream, seq); false when it was seen already. */
  remember(point) {
    if (point.stream == null || point.seq == null) return true;
    const key = `${point.stream}\u0000${point.seq}`;
    if (this.keys.has(key)) return false;
    this.keys.add(key);
    this.keyOrder.push(key);
    if (this.keyOrder.length > MAX_KEYS_REMEMBERED) this.keys.delete(this.keyOrder.shift());
    return true;
  }

  addPoint(point) {
    this.points.push(point);
    if (this.points.length > MAX_POINTS_KEPT) this.points.shift();
    this.ensureCustomGraphs(point);
  }

  ensureCustomGraphs(point) {
    if (!this.data.flags.graphs) return;
    const keys = Object.keys(point.extra || {}).filter((key) => !this.graphs.graphs.has(`custom:${key}`));
    if (keys.length) {
      this.graphs.configure(keys.map((key) => ({ graph_id: `custom:${key}`, title: key, y_label: key, metrics: [key], max_points: 1000 })));
    }
  }

  renderSpectators() {
    const moderate = this.viewer && this.viewer.is_manager ? (action, spectator) => this.moderate(action, spectator) : null;
    renderSpectators($("#spectator-list"), this.spectators, { selfId: this.viewer && this.viewer.spectator_id, moderate });
  }

  renderPending() {
    const requests = Array.from(this.pending.values());
    renderRequests($("#pending-list"), requests, (action, request) => {
      this.send({ type: action, request_id: request.request_id });
    });
    setText($("#pending-count"), String(requests.length));
    $("#pending-count").classList.toggle("count-pill-alert", requests.length > 0);
    $("#pending-empty").hidden = requests.length > 0;
    $("#admit-all").hidden = requests.length === 0;
  }

  moderate(action, spectator) {
    if (action === "ban" && !window.confirm(`Ban ${spectator.display_name} from this room? They leave now and cannot come back.`)) return;
    this.send({ type: action, spectator_id: spectator.spectator_id });
  }

  setCount(count) {
    setText($("#viewer-count"), String(count));
    setText($("#spectator-count"), String(count));
  }
}

LiveRoom.prototype.handlers = {
  graph_config(message) {
    this.graphs.configure(message.graphs || []);
  },

  snapshot(message) {
    this.live = true;
    this.attempt = 0;
    this.retryTimer = 0;
    this.viewer = message.viewer;
    this.setConn("live", "Live");
    const session = message.training_session || {};
    if (session.algorithm) setText($("#live-algorithm"), session.algorithm);
    this.overlay.totalEpisodes = session.total_episodes || this.overlay.totalEpisodes;
    this.handlers.training_status.call(this, { status: session.status });
    // Merge the history (the late joiner's charts, a reconnect's backfill); skip what we have.
    let added = 0;
    for (const point of message.history || []) {
      if (this.remember(point)) {
        this.addPoint(point);
        added += 1;
      }
    }
    if (added) {
      this.points.sort((a, b) => a.timestamp - b.timestamp);
      this.graphs.reset(this.points);
    }
    // The overlay shows each field's latest value, also when the newest point leaves some out.
    if (added) this.overlay.updateMany(this.points);
    else if (message.current_metrics) this.overlay.update(message.current_metrics);
    this.spectators = message.spectators || [];
    this.setCount(message.spectator_count ?? this.spectators.length);
    this.renderSpectators();
    if (this.viewer.is_manager) {
      $("#owner-panel").hidden = false;
      this.pending = new Map((message.pending_requests || []).map((r) => [r.request_id, r]));
      this.renderPending();
    }
    document.body.dataset.live = "1";
  },

  training_metrics(message) {
    const point = message.data;
    if (!this.remember(point)) return;
    this.addPoint(point);
    this.overlay.update(point);
    this.graphs.add(point);
  },

  graph_update() {
    // The graphs are drawn from training_metrics (same points, deduplicated by stream+seq).
  },

  bot_decision(message) {
    this.decisions.update(message);
  },

  training_status(message) {
    const el = $("#training-state");
    const labels = { paused: "Training paused", completed: "Training completed", closed: "Training ended" };
    const label = labels[message.status];
    el.hidden = !label;
    el.dataset.status = message.status || "";
    setText(el, label || "");
    if (message.algorithm) setText($("#live-algorithm"), message.algorithm);
    // The trainer's note or a trend the server noticed ("New best reward …"): text only.
    if (message.message) toast(this.toastEl, message.message);
  },

  spectator_list(message) {
    this.spectators = message.spectators || [];
    this.setCount(message.count ?? this.spectators.length);
    this.renderSpectators();
  },

  join_request(message) {
    this.pending.set(message.request.request_id, message.request);
    this.renderPending();
    toast(this.toastEl, `${message.request.display_name} asks to join`);
  },

  join_request_decided(message) {
    this.pending.delete(message.request.request_id);
    this.renderPending();
  },

  room_closed(message) {
    this.closedReason = message.reason;
  },

  speed(message) {
    const value = message.mode === "live" ? "live" : String(message.max_hz);
    const input = document.querySelector(`input[name=speed][value="${CSS.escape(value)}"]`);
    if (input) input.checked = true;
  },

  pong(message) {
    if (typeof message.t === "number") this.connEl.title = `Round trip ${Date.now() - message.t} ms`;
  },

  error(message) {
    if (!this.live) {
      this.lastError = message;
      return;
    }
    toast(this.toastEl, message.message || "Something went wrong.", { error: true });
  },
};
