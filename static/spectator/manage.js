// The owner's room page: share, password, live join requests and spectators (kick, ban, time
// out, back to the waiting room), invitations, bans, close. ``moderation.js`` adds the rest. Everything goes through the REST API with the session.
import { api, apiOrOffline, errorMessage, roomPath } from "./api.js";
import { $, readJson, setText, wireCopyButtons } from "./dom.js";
import { renderRequests, renderSpectators, renderUsers } from "./people.js";

const data = readJson("manage-data");
const POLL_MS = 2000;
const TIMEOUT_SECONDS = 10 * 60;
const errorEl = $("#manage-error");

function fail(result) {
  errorEl.hidden = false;
  setText(errorEl, errorMessage(result));
}

async function call(method, rest, body) {
  const result = await apiOrOffline(method, roomPath(data.code, rest), body);
  if (!result.ok) fail(result);
  else errorEl.hidden = true;
  return result;
}

async function refreshLive() {
  const [requests, spectators] = await Promise.all([
    api("GET", roomPath(data.code, "join-requests/")).catch(() => null),
    api("GET", roomPath(data.code, "spectators/")).catch(() => null),
  ]);
  if (requests && requests.ok) {
    renderRequests($("#pending-list"), requests.data, async (action, request) => {
      await call("POST", `join-requests/${request.request_id}/${action}/`, {});
      refreshLive();
    });
    setText($("#pending-count"), String(requests.data.length));
    $("#pending-count").classList.toggle("count-pill-alert", requests.data.length > 0);
    $("#pending-empty").hidden = requests.data.length > 0;
  }
  if (spectators && spectators.ok) {
    renderSpectators($("#spectator-list"), spectators.data, {
      more: true,
      moderate: async (action, spectator) => {
        if (action === "timeout") {
          await call("POST", "timeouts/", { spectator_id: spectator.spectator_id, duration_seconds: TIMEOUT_SECONDS });
          document.dispatchEvent(new CustomEvent("spectator:moderated"));
        } else if (action === "waiting") {
          await call("POST", `spectators/${spectator.spectator_id}/send-to-waiting/`, {});
        } else if (action === "ban") {
          if (!window.confirm(`Ban ${spectator.display_name} from this room? They leave now and cannot come back.`)) return;
          await call("POST", "bans/", { spectator_id: spectator.spectator_id });
          refreshLists();
        } else {
          await call("POST", `spectators/${spectator.spectator_id}/kick/`, {});
        }
        refreshLive();
      },
    });
    setText($("#spectator-count"), String(spectators.data.length));
    $("#spectator-empty").hidden = spectators.data.length > 0;
  }
}

async function refreshLists() {
  const [invitations, bans] = await Promise.all([
    api("GET", roomPath(data.code, "invitations/")).catch(() => null),
    api("GET", roomPath(data.code, "bans/")).catch(() => null),
  ]);
  if (invitations && invitations.ok) {
    renderUsers($("#invitation-list"), invitations.data, {
      name: (item) => item.username,
      detail: (item) => (item.invited_by ? `invited by ${item.invited_by}` : "invited"),
      actionLabel: "Revoke",
      action: async (item) => {
        await call("DELETE", `invitations/${item.invitation_id}/`);
        refreshLists();
      },
    });
  }
  if (bans && bans.ok) {
    renderUsers($("#ban-list"), bans.data, {
      name: (item) => item.display_name || item.username || "Guest",
      detail: (item) => [item.username ? `@${item.username}` : "guest", item.reason].filter(Boolean).join(" · "),
      actionLabel: "Lift",
      action: async (item) => {
        await call("DELETE", `bans/${item.ban_id}/`);
        refreshLists();
      },
    });
    $("#ban-empty").hidden = bans.data.length > 0;
  }
}

async function loop() {
  if (document.visibilityState === "visible") await refreshLive();
  setTimeout(loop, POLL_MS);
}

$("#invite-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = $("#invite-username");
  const error = $("#invite-error");
  const username = input.value.trim();
  if (!username) {
    error.hidden = false;
    setText(error, "Enter a username.");
    return;
  }
  const result = await api("POST", roomPath(data.code, "invitations/"), { username }).catch(() => null);
  if (result && result.ok) {
    input.value = "";
    error.hidden = true;
    refreshLists();
  } else {
    error.hidden = false;
    setText(error, result ? errorMessage(result) : "Cannot reach the server; try again.");
  }
});

const regenerate = $("#regenerate-password");
if (regenerate) {
  regenerate.addEventListener("click", async () => {
    if (!window.confirm("Generate a new password? The old one stops working for new spectators.")) return;
    const result = await call("POST", "password/", {});
    if (result.ok) {
      $("#regenerated").hidden = false;
      $("#regenerated-password").value = result.data.room_password;
      $("#regenerated-password").focus();
      $("#regenerated-password").select();
    }
  });
}

const closeButton = $("#close-room");
if (closeButton) {
  closeButton.addEventListener("click", async () => {
    if (!window.confirm("Close this room? Everyone watching leaves now and the code stops working.")) return;
    const result = await call("POST", "close/", {});
    if (result.ok) window.location.reload();
  });
}

wireCopyButtons();
refreshLists();
if (data.is_live) loop();
else refreshLive();
