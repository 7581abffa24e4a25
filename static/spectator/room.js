// A room page: the join flow (password, approval, refusals), then the live room.
import { api, errorMessage, roomPath } from "./api.js";
import { $, readJson, setText, wireCopyButtons } from "./dom.js";
import { wireExports } from "./exports.js";
import { LiveRoom } from "./live.js";

const data = readJson("room-data");
const page = $("#room-page");
const SCREENS = ["joining", "password", "request", "waiting", "refused", "live"];
// The approval wait polls the join API; 2.5 s stays well inside its default 30/min throttle.
const POLL_MS = 2500;

// What a refusal means for the person looking at the page: a title and what to do.
const REFUSALS = {
  room_not_found: ["No room with that code", "Check the code. A private room looks missing to anyone not on its list."],
  room_closed: ["This room has been closed", "Its owner closed the room. Nobody can watch it any more."],
  room_expired: ["This room has expired", "It was open for a limited time. Ask its owner for a new room."],
  banned: ["You cannot watch this room", "You are banned from this room."],
  sign_in_required: ["Sign in to watch", "This room is invite-only: sign in with the username its owner invited."],
  not_invited: ["You have not been invited", "This room is invite-only and you are not on its guest list. Ask its owner to invite you."],
  join_denied: ["Your request was declined", "The room's owner did not let you in."],
  room_full: ["This room is full", "Every seat is taken. Try again in a moment."],
  room_locked: ["This room is locked", "Nobody new can join right now. Try again later."],
  timed_out: ["You are timed out", "A moderator timed you out of this room. You can come back when the time is up."],
  invite_link_invalid: ["This invite link no longer works", "The invite link has expired or was revoked. Ask the room's owner for a new one."],
  invite_link_not_yours: ["This invite link is for someone else", "It was made for another user. Sign in as them, or ask the room's owner for your own link."],
  kicked: ["You were removed from this room", "The room's owner removed you. You can join again."],
  refused: ["You cannot watch this room", "The server refused the connection."],
};

const state = {
  password: null,
  displayName: null,
  visitorToken: null,
  live: null,
  pollTimer: 0,
  lockTimer: 0,
  offlineTries: 0,
};

function show(name, { focus = true } = {}) {
  for (const screen of SCREENS) $(`#screen-${screen}`).hidden = screen !== name;
  page.dataset.screen = name;
  if (!focus || name === "live") return;
  const target = $(`#screen-${name} [autofocus]`) || $(`#screen-${name} h1`);
  if (target) {
    if (target.tagName === "H1") target.tabIndex = -1;
    target.focus({ preventScroll: true });
  }
}

function showError(el, message) {
  el.hidden = !message;
  setText(el, message || "");
}

/** POST the join API with what we know; classify the answer. */
async function join(extra = {}) {
  const body = { ...extra };
  if (state.password) body.password = state.password;
  if (state.displayName) body.display_name = state.displayName;
  if (state.visitorToken) body.visitor_token = state.visitorToken;
  if (data.invite_token) body.invite_token = data.invite_token;
  let result;
  try {
    result = await api("POST", roomPath(data.code, "join/"), body);
  } catch {
    return { kind: "offline" };
  }
  if (result.data && result.data.visitor_token) state.visitorToken = result.data.visitor_token;
  if (result.status === 200) return { kind: "admitted", ...result.data };
  if (result.status === 202) return { kind: "pending", ...result.data };
  const code = (result.data && result.data.error) || "error";
  const detail = errorMessage(result);
  if (result.status === 429) {
    const retryAfter = parseInt(result.headers.get("Retry-After") || "5", 10);
    return { kind: code === "locked_out" ? "locked" : "throttled", retryAfter, detail };
  }
  if (result.status === 400) return { kind: "invalid", detail, fields: result.data && result.data.fields };
  if (result.status >= 500) return { kind: "offline" };
  return { kind: "refused", code, detail, status: result.status };
}

function refuse(code, detail) {
  const [title, text] = REFUSALS[code] || REFUSALS.refused;
  setText($("#refused-title"), title);
  setText($("#refused-detail"), code in REFUSALS ? text : detail || text);
  $("#refused-signin").hidden = !(code === "sign_in_required" || (code === "not_invited" && !data.signed_in));
  $("#refused-retry").hidden = !(code === "room_full" || code === "kicked" || code === "room_locked");
  $("#refused-retry").textContent = code === "kicked" ? "Join again" : "Try again";
  page.dataset.refusal = code;
  show("refused");
}

function lockout(seconds) {
  const input = $("#room-password");
  const button = $("#password-submit");
  const error = $("#password-error");
  const until = Date.now() + seconds * 1000;
  input.disabled = true;
  button.disabled = true;
  page.dataset.locked = "1";
  clearInterval(state.lockTimer);
  const tick = () => {
    const left = Math.max(0, Math.ceil((until - Date.now()) / 1000));
    if (!left) {
      clearInterval(state.lockTimer);
      input.disabled = false;
      button.disabled = false;
      delete page.dataset.locked;
      showError(error, "You can try the password again.");
      return;
    }
    const minutes = Math.floor(left / 60);
    const clock = minutes ? `${minutes} min ${String(left % 60).padStart(2, "0")} s` : `${left} s`;
    showError(error, `Too many wrong passwords. You can try again in ${clock}.`);
  };
  tick();
  state.lockTimer = setInterval(tick, 1000);
  show("password", { focus: false });
  error.dataset.kind = "lockout";
}

/** The waiting screen: where the visitor stands in line and what the room's owner says. */
function showWaiting(result) {
  const place = $("#waiting-place");
  place.hidden = !result.place;
  if (result.place) setText(place, result.place === 1 ? "You are next in line." : `You are number ${result.place} in line.`);
  const message = $("#waiting-message");
  const text = result.waiting_message || "";
  message.hidden = !text;
  setText(message, text);
}

/** Act on a join result: go live, wait, ask for the password, or explain the refusal. */
function handle(result, { from = "joining" } = {}) {
  switch (result.kind) {
    case "admitted":
      state.offlineTries = 0;
      return goLive(result.ticket);
    case "pending":
      showWaiting(result);
      show("waiting", { focus: from !== "waiting" });
      clearTimeout(state.pollTimer);
      state.pollTimer = setTimeout(poll, POLL_MS);
      return undefined;
    case "locked":
      return lockout(result.retryAfter);
    case "invalid": {
      const target = from === "request" ? $("#request-error") : from === "password" ? $("#password-error") : null;
      if (target) return showError(target, result.detail);
      return refuse("refused", result.detail);
    }
    case "throttled":
    case "offline": {
      state.offlineTries += 1;
      const delay = result.retryAfter ? result.retryAfter * 1000 : Math.min(15000, 500 * 2 ** state.offlineTries);
      if (from === "waiting") {
        state.pollTimer = setTimeout(poll, Math.max(POLL_MS, delay));
        return undefined;
      }
      show("joining", { focus: false });
      setText($("#joining-detail"), "Cannot reach the server; trying again…");
      setTimeout(() => attempt(), delay);
      return undefined;
    }
    default:
      if (result.code === "password_required" || result.code === "wrong_password") {
        const wrong = result.code === "wrong_password";
        state.password = null;
        show("password", { focus: false });
        const input = $("#room-password");
        input.value = "";
        input.setAttribute("aria-invalid", wrong ? "true" : "false");
        $("#password-error").dataset.kind = wrong ? "wrong" : "";
        showError($("#password-error"), wrong ? "Wrong password. Check it with whoever shared the room and try again." : "");
        input.focus();
        return undefined;
      }
      return refuse(result.code, result.detail);
  }
}

async function attempt(extra) {
  show("joining", { focus: false });
  handle(await join(extra));
}

async function poll() {
  handle(await join(), { from: "waiting" });
}

function goLive(ticket) {
  clearTimeout(state.pollTimer);
  show("live");
  if (state.live) {
    // Back after the room was left (a kick, a new approval): same charts, new connection.
    state.live.resume(ticket);
    return;
  }
  state.live = new LiveRoom(data, {
    rejoin: () => join(),
    // A refusal from the socket or from joining again: explain it (or ask again: password, approval).
    onGone: (result) => (result.kind && result.kind !== "refused" ? handle(result) : refuse(result.code, result.detail)),
  });
  window.spectatorRoom = state.live;
  state.live.start(ticket);
}

$("#password-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = $("#room-password");
  const name = $("#password-name");
  if (!input.value) {
    showError($("#password-error"), "Enter the room's password.");
    input.focus();
    return;
  }
  state.password = input.value;
  if (name && name.value.trim()) state.displayName = name.value.trim();
  $("#password-submit").disabled = true;
  const result = await join();
  $("#password-submit").disabled = page.dataset.locked === "1";
  handle(result, { from: "password" });
});

$("#request-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const name = $("#request-name");
  if (name && name.value.trim()) state.displayName = name.value.trim();
  const message = $("#request-message").value.trim();
  const button = event.target.querySelector("button[type=submit]");
  button.disabled = true;
  const result = await join(message ? { message } : {});
  button.disabled = false;
  handle(result, { from: "request" });
});

$("#refused-retry").addEventListener("click", () => attempt());
wireCopyButtons();
wireExports(document, () => (state.live && state.live.graphs.shownRange ? state.live.graphs.shownRange() : null));

if (data.screen === "joining") attempt();
else if (data.screen === "waiting") poll();
else if (data.screen === "refused") refuse(data.refusal);
else show(data.screen);
