// The owner's room page, moderation: admit all, approval, lock and listing switches, the waiting
// room message, approval expiry, moderators, invite links, timeouts and the audit trail.
// User text goes in as text nodes only (h, setText).
import { api, apiOrOffline, errorMessage, roomPath } from "./api.js";
import { $, h, readJson, setText } from "./dom.js";
import { renderUsers } from "./people.js";

const data = readJson("manage-data");
const status = $("#moderation-status");

function say(message, { error = false } = {}) {
  status.hidden = !message;
  status.classList.toggle("field-error", error);
  setText(status, message || "");
}

async function call(method, rest, body) {
  const result = await apiOrOffline(method, roomPath(data.code, rest), body);
  if (!result.ok) say(errorMessage(result), { error: true });
  return result;
}

function showControls(room) {
  const control = room.access_control;
  $("#toggle-approval").checked = control.require_approval;
  $("#toggle-lock").checked = control.locked;
  const listed = $("#toggle-listed");
  if (listed) listed.checked = control.listed;
  page.dataset.locked = control.locked ? "1" : "0";
  page.dataset.approval = control.require_approval ? "1" : "0";
}

const page = $("#moderation");

/** Wire ``handler`` to ``selector``'s ``event`` when the element is on the page (live rooms only). */
function on(selector, event, handler) {
  const el = $(selector);
  if (el) el.addEventListener(event, handler);
}

on("#admit-all", "click", async () => {
  const result = await call("POST", "join-requests/admit-all/");
  if (result.ok) say(result.data.admitted === 1 ? "Admitted 1 spectator." : `Admitted ${result.data.admitted} spectators.`);
  refreshAudit();
});

on("#toggle-approval", "change", async (event) => {
  const result = await call("PATCH", "access/", { require_approval: event.target.checked });
  if (result.ok) {
    showControls(result.data);
    say(event.target.checked ? "New spectators now wait for approval." : "Approval is off: everyone waiting was let in.");
  } else event.target.checked = !event.target.checked;
  refreshAudit();
});

on("#toggle-lock", "change", async (event) => {
  const result = await call("POST", event.target.checked ? "lock/" : "unlock/");
  if (result.ok) {
    showControls(result.data);
    say(event.target.checked ? "Locked: nobody new can join." : "Unlocked.");
  } else event.target.checked = !event.target.checked;
  refreshAudit();
});

{
  on("#toggle-listed", "change", async (event) => {
    const result = await call("PATCH", "access/", { listed: event.target.checked });
    if (result.ok) {
      showControls(result.data);
      say(event.target.checked ? "Listed on the lobby." : "Unlisted: only people with the link find it.");
    } else event.target.checked = !event.target.checked;
    refreshAudit();
  });
}

on("#waiting-form", "submit", async (event) => {
  event.preventDefault();
  const hours = parseFloat($("#approval-ttl").value || "0");
  if (!(hours >= 0)) {
    say("Approval lasts a number of hours (0 = forever).", { error: true });
    return;
  }
  const result = await call("PATCH", "access/", {
    waiting_message: $("#waiting-message-input").value,
    approval_ttl: Math.round(hours * 3600),
  });
  if (result.ok) say("Saved.");
  refreshAudit();
});

// --- Moderators ------------------------------------------------------------------------------

async function refreshModerators() {
  if (!$("#moderator-list")) return;
  const result = await api("GET", roomPath(data.code, "moderators/")).catch(() => null);
  if (!result || !result.ok) return;
  renderUsers($("#moderator-list"), result.data, {
    name: (item) => item.username,
    detail: (item) => (item.added_by ? `added by ${item.added_by}` : "moderator"),
    actionLabel: "Remove",
    action: async (item) => {
      await call("DELETE", `moderators/${encodeURIComponent(item.username)}/`);
      refreshModerators();
      refreshAudit();
    },
  });
  $("#moderator-empty").hidden = result.data.length > 0;
}

on("#moderator-form", "submit", async (event) => {
  event.preventDefault();
  const input = $("#moderator-username");
  const username = input.value.trim();
  if (!username) return say("Enter a username.", { error: true });
  const result = await call("POST", "moderators/", { username });
  if (result.ok) {
    input.value = "";
    say(`${username} is now a moderator.`);
  }
  refreshModerators();
  refreshAudit();
  return undefined;
});

// --- Invite links ----------------------------------------------------------------------------

async function refreshLinks() {
  if (!$("#link-list")) return;
  const result = await api("GET", roomPath(data.code, "invite-links/")).catch(() => null);
  if (!result || !result.ok) return;
  renderUsers($("#link-list"), result.data, {
    name: (item) => item.label || (item.username ? `For ${item.username}` : "Anyone with the link"),
    detail: (item) =>
      [item.grants_password ? "skips the password" : "", `used ${item.uses}×`, `until ${new Date(item.expires_at).toLocaleString()}`]
        .filter(Boolean)
        .join(" · "),
    actionLabel: "Revoke",
    action: async (item) => {
      await call("DELETE", `invite-links/${item.link_id}/`);
      refreshLinks();
      refreshAudit();
    },
  });
  $("#link-empty").hidden = result.data.length > 0;
}

on("#link-form", "submit", async (event) => {
  event.preventDefault();
  const body = {
    label: $("#link-label").value.trim(),
    expires_in_hours: parseFloat($("#link-hours").value || "24"),
  };
  const username = $("#link-username").value.trim();
  if (username) body.username = username;
  const grants = $("#link-password");
  if (grants) body.grants_password = grants.checked;
  const result = await call("POST", "invite-links/", body);
  if (result.ok) {
    $("#new-link").hidden = false;
    $("#new-link-url").value = result.data.url;
    $("#new-link-url").select();
    say("Invite link created: copy it now, it is shown once.");
  }
  refreshLinks();
  refreshAudit();
});

// --- Timeouts --------------------------------------------------------------------------------

async function refreshTimeouts() {
  if (!$("#timeout-list")) return;
  const result = await api("GET", roomPath(data.code, "timeouts/")).catch(() => null);
  if (!result || !result.ok) return;
  renderUsers($("#timeout-list"), result.data, {
    name: (item) => item.display_name || item.username || "Guest",
    detail: (item) => `until ${new Date(item.expires_at).toLocaleTimeString()}`,
    actionLabel: "End",
    action: async (item) => {
      await call("DELETE", `timeouts/${item.ban_id}/`);
      refreshTimeouts();
      refreshAudit();
    },
  });
  $("#timeout-empty").hidden = result.data.length > 0;
}

// --- Audit trail -----------------------------------------------------------------------------

async function refreshAudit() {
  const result = await api("GET", `${roomPath(data.code, "audit/")}?limit=50`).catch(() => null);
  if (!result || !result.ok) return;
  const rows = result.data.results.map((entry) =>
    h("tr", { dataset: { action: entry.action } },
      h("td", {}, new Date(entry.created_at).toLocaleString()),
      h("td", {}, entry.action.replaceAll("_", " ")),
      h("td", {}, entry.actor),
      h("td", {}, entry.target),
      h("td", { class: "mono" }, entry.ip || "")));
  $("#audit-rows").replaceChildren(...rows);
  $("#audit-empty").hidden = rows.length > 0;
}

document.addEventListener("spectator:moderated", () => {
  refreshTimeouts();
  refreshAudit();
});

refreshModerators();
refreshLinks();
refreshTimeouts();
refreshAudit();
setInterval(() => {
  if (document.visibilityState === "visible") refreshAudit();
}, 5000);
