// Download links of a session's history (templates/rooms/_exports.html). The links work as
// they are; with "only the range shown" ticked, each asks the export API for the episode or
// time range the page's graphs show at the moment of the click.

const RANGE_PARAMS = ["episode_from", "episode_to", "time_from", "time_to"];

/**
 * Offer "only the range shown" in every [data-exports] box under ``root``.
 * ``rangeOf(sessionId)`` returns the range shown, e.g. {time_from, time_to} or
 * {episode_from, episode_to} (any end may be missing), or null for the whole run.
 * A checkbox [data-export-range-all] elsewhere on the page stands for every box without its own.
 */
export function wireExports(root, rangeOf) {
  const shared = root.querySelector("[data-export-range-all]");
  if (shared) shared.closest("[data-export-range-label]").hidden = false;
  for (const box of root.querySelectorAll("[data-exports]")) {
    const own = box.querySelector("[data-export-range]");
    if (own) own.closest("[data-export-range-label]").hidden = false;
    const check = own || shared;
    box.addEventListener("click", (event) => {
      const link = event.target.closest("a[data-export]");
      if (!link) return;
      // The click's navigation reads the href after this listener has set it.
      const url = new URL(link.getAttribute("href"), location.href);
      for (const name of RANGE_PARAMS) url.searchParams.delete(name);
      const range = check && check.checked ? rangeOf(box.dataset.session) : null;
      for (const name of RANGE_PARAMS) {
        const value = range ? range[name] : null;
        if (value != null && Number.isFinite(value)) url.searchParams.set(name, String(value));
      }
      link.setAttribute("href", url.pathname + url.search);
    });
  }
}
