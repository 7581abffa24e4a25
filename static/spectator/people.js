// Lists of people (spectators, join requests, invitations, bans), shared by the live room and
// the owner's room page. Names are user text: they go in as text nodes only.
import { h, initials } from "./dom.js";

function since(iso) {
  if (!iso) return "";
  const seconds = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (seconds < 60) return "just now";
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  return `${Math.floor(seconds / 3600)} h ago`;
}

function person(name, detail, ...actions) {
  return [
    h("span", { class: "avatar", "aria-hidden": "true" }, initials(name)),
    h("span", { class: "person" }, h("span", { class: "person-name" }, name), detail ? h("span", { class: "person-detail" }, detail) : null),
    actions.length ? h("span", { class: "person-actions" }, ...actions) : null,
  ];
}

/** Render spectators; ``moderate`` adds Kick and Ban buttons (never on your own row), and with
 * ``more`` also Time out and Back to waiting. */
export function renderSpectators(list, spectators, { selfId = null, moderate = null, more = false } = {}) {
  list.replaceChildren(
    ...spectators.map((s) => {
      const isSelf = s.spectator_id === selfId;
      const detail = [s.username && s.username !== s.display_name ? `@${s.username}` : "", isSelf ? "you" : "", since(s.joined_at)]
        .filter(Boolean)
        .join(" · ");
      const actions = moderate && !isSelf
        ? [
          h("button", { class: "btn btn-xs", type: "button", "aria-label": `Kick ${s.display_name}`, onclick: () => moderate("kick", s) }, "Kick"),
          h("button", { class: "btn btn-xs btn-danger-ghost", type: "button", "aria-label": `Ban ${s.display_name}`, onclick: () => moderate("ban", s) }, "Ban"),
          ...(more
            ? [
              h("button", { class: "btn btn-xs", type: "button", "aria-label": `Time out ${s.display_name}`, onclick: () => moderate("timeout", s) }, "Time out"),
              h("button", { class: "btn btn-xs", type: "button", "aria-label": `Send ${s.display_name} back to the waiting room`, onclick: () => moderate("waiting", s) }, "To waiting room"),
            ]
            : []),
        ]
        : [];
      return h("li", { class: "people-row", dataset: { spectatorId: s.spectator_id } }, ...person(s.display_name, detail, ...actions));
    }),
  );
}

/** Render pending join requests with Approve and Deny. */
export function renderRequests(list, requests, decide) {
  list.replaceChildren(
    ...requests.map((r) => {
      const detail = [r.username ? `@${r.username}` : "guest", since(r.created_at)].join(" · ");
      const row = h("li", { class: "people-row request", dataset: { requestId: r.request_id } },
        ...person(r.display_name, detail,
          h("button", { class: "btn btn-xs btn-primary", type: "button", "aria-label": `Approve ${r.display_name}`, onclick: () => decide("approve", r) }, "Approve"),
          h("button", { class: "btn btn-xs", type: "button", "aria-label": `Deny ${r.display_name}`, onclick: () => decide("deny", r) }, "Deny")));
      if (r.message) row.append(h("p", { class: "request-message" }, `“${r.message}”`));
      return row;
    }),
  );
}

/** Render a list of users with one action button each (revoke an invitation, lift a ban). */
export function renderUsers(list, items, { name, detail, actionLabel, action }) {
  list.replaceChildren(
    ...items.map((item) =>
      h("li", { class: "people-row" }, ...person(name(item), detail(item),
        h("button", { class: "btn btn-xs", type: "button", "aria-label": `${actionLabel} ${name(item)}`, onclick: () => action(item) }, actionLabel)))),
  );
}
