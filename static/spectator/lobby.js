// The lobby: keep the public rooms, their viewer counts and training progress current.
import { api } from "./api.js";
import { $, h, setText } from "./dom.js";

const POLL_MS = 3000;
const list = $("#room-list");
const empty = $("#room-empty");
const count = $("#room-count");
const updated = $("#lobby-updated");

function episodeText(progress) {
  if (progress.episode == null) return "Waiting for the first episode";
  return progress.total_episodes ? `Episode ${progress.episode} of ${progress.total_episodes}` : `Episode ${progress.episode}`;
}

function card(room) {
  const progress = room.progress || {};
  const session = room.training_session || {};
  const title = room.name || session.name || session.id;
  const bar = h("progress", { "data-field": "progress", "aria-label": "Training progress" });
  return h(
    "article",
    { class: "room-card", dataset: { roomId: room.room_id } },
    h(
      "div",
      { class: "room-card-head" },
      h("span", { class: "badge badge-live" }, h("span", { class: "dot", "aria-hidden": "true" }), "Live"),
      room.access_control && room.access_control.access_level === "password" ? h("span", { class: "badge" }, "Password") : null,
      h("span", { class: "viewers", "data-field": "viewers" }, h("b", {}, String(room.current_spectators)), " watching"),
    ),
    h("h3", { class: "room-card-title" }, h("a", { href: `/r/${encodeURIComponent(room.room_code)}/` }, title)),
    h(
      "p",
      { class: "room-card-sub" },
      h("span", { class: "algo", "data-field": "algorithm" }, progress.algorithm || "Algorithm not reported"),
      room.name && session.name && session.name !== room.name ? [h("span", { class: "sep", "aria-hidden": "true" }, "·"), h("span", {}, session.name)] : null,
    ),
    h(
      "div",
      { class: "room-card-progress" },
      bar,
      h(
        "p",
        { class: "room-card-meta" },
        h("span", { "data-field": "episode" }, episodeText(progress)),
        h("span", { class: "code-chip" }, room.room_code),
      ),
    ),
  );
}

function updateCard(el, room) {
  const progress = room.progress || {};
  setText(el.querySelector("[data-field=viewers] b"), String(room.current_spectators));
  setText(el.querySelector("[data-field=episode]"), episodeText(progress));
  setText(el.querySelector("[data-field=algorithm]"), progress.algorithm || "Algorithm not reported");
  const bar = el.querySelector("[data-field=progress]");
  if (progress.total_episodes) {
    bar.max = progress.total_episodes;
    bar.value = Math.min(progress.episode || 0, progress.total_episodes);
  } else {
    bar.max = 1;
    bar.value = 0;
  }
}

function render(rooms) {
  const existing = new Map(Array.from(list.children).map((el) => [el.dataset.roomId, el]));
  const ordered = rooms.map((room) => {
    const el = existing.get(room.room_id) || card(room);
    updateCard(el, room);
    existing.delete(room.room_id);
    return el;
  });
  for (const gone of existing.values()) gone.remove();
  ordered.forEach((el, index) => {
    if (list.children[index] !== el) list.insertBefore(el, list.children[index] || null);
  });
  setText(count, String(rooms.length));
  empty.hidden = rooms.length > 0;
}

async function poll() {
  if (document.visibilityState === "visible") {
    try {
      const result = await api("GET", list.dataset.api);
      if (result.ok) {
        render(result.data.results || []);
        setText(updated, `Updated ${new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" })}`);
      }
    } catch {
      setText(updated, "Offline; retrying…");
    }
  }
  setTimeout(poll, POLL_MS);
}

// The page arrives rendered; the first poll refreshes it.
setTimeout(poll, POLL_MS);
