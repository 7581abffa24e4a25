// The admin's live resource page: poll the staff-only JSON endpoint and refresh the figures.
// Every value goes in as text (textContent); room names are user text.
import { duration, fixed, integer, isNum } from "./format.js";
import { h, setText } from "./dom.js";

const root = document.querySelector("[data-usage-url]");

function bytes(value) {
  if (!isNum(value)) return "—";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let size = value;
  let unit = 0;
  while (size >= 1024 && unit < units.length - 1) {
    size /= 1024;
    unit += 1;
  }
  return `${unit ? size.toFixed(1) : Math.round(size)} ${units[unit]}`;
}

const FORMATS = {
  duration: (v) => duration(v),
  bytes: (v) => bytes(v),
  byterate: (v) => (isNum(v) ? `${bytes(v)}/s` : "—"),
  percent: (v) => (isNum(v) ? `${fixed(v, 1)} %` : "—"),
  seconds: (v) => (isNum(v) ? `${fixed(v, 1)} s` : "—"),
  rate: (v) => fixed(v, 1),
  integer: (v) => integer(v),
};

function lookup(data, path) {
  return path.split(".").reduce((value, key) => (value == null ? undefined : value[key]), data);
}

function renderRooms(body, rooms) {
  const rows = rooms.length
    ? rooms.map((room) =>
        h(
          "tr",
          {},
          h("td", {}, room.admin_url ? h("a", { href: room.admin_url }, room.room_code) : room.room_id),
          h("td", {}, room.name || ""),
          h("td", {}, integer(room.spectators)),
        ),
      )
    : [h("tr", {}, h("td", { colspan: 3 }, "No spectators connected to this process."))];
  body.replaceChildren(...rows);
}

function render(data) {
  for (const el of root.querySelectorAll("[data-field][data-format]")) {
    setText(el, FORMATS[el.dataset.format](lookup(data, el.dataset.field)));
  }
  setText(root.querySelector('[data-field="pid"]'), data.pid);
  renderRooms(root.querySelector("[data-rooms]"), data.rooms || []);
}

async function refresh() {
  const status = root.querySelector('[data-field="status"]');
  try {
    const response = await fetch(root.dataset.usageUrl, {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    render(await response.json());
    setText(status, "");
  } catch (error) {
    setText(status, `Could not refresh (${error.message}); retrying.`);
  }
}

if (root) {
  const seconds = Number(root.dataset.pollSeconds) || 2;
  const tick = async () => {
    await refresh();
    setTimeout(tick, seconds * 1000);
  };
  tick();
}
