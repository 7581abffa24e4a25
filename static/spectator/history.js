// Stored history for the graphs: the history API (GET /api/v1/sessions/<id>/history/), which
// downsamples on the server to a number of points (every bucket's min and max survive), and
// the curve arithmetic that merges what it returns with what the page already shows.
import { api, errorMessage } from "./api.js";

// The history API's limits (metrics.api.serializers.HistoryQuerySerializer).
export const MAX_METRICS_PER_REQUEST = 16;
const MAX_POINTS = 10000;
const MIN_POINTS = 200;

/**
 * How many points a curve needs for a plot ``width`` CSS pixels wide: a bucket per pixel
 * column, and the server keeps two points (its min and max) a bucket.
 */
export function pointsForWidth(width) {
  return Math.max(MIN_POINTS, Math.min(MAX_POINTS, Math.round((width || 600) * 2)));
}

/**
 * Fetch ``metrics`` of one session with ``params`` (x, points, ranges, smooth), in as many
 * requests as the API's metric limit needs. Resolves to {ok, count, x_range, downsampled,
 * series: {name: {count, data, smoothed?}}, received} or {ok: false, status, message};
 * ``received`` counts the points that came over the wire.
 */
export async function fetchSeries(url, metrics, params) {
  if (!metrics.length) return { ok: true, count: 0, x_range: null, downsampled: false, series: {}, received: 0 };
  const chunks = [];
  for (let i = 0; i < metrics.length; i += MAX_METRICS_PER_REQUEST) chunks.push(metrics.slice(i, i + MAX_METRICS_PER_REQUEST));
  let results;
  try {
    results = await Promise.all(chunks.map((chunk) => {
      const query = new URLSearchParams();
      for (const [key, value] of Object.entries(params)) if (value != null) query.set(key, String(value));
      query.set("metrics", chunk.join(","));
      return api("GET", `${url}?${query}`);
    }));
  } catch {
    return { ok: false, status: 0, message: "Cannot reach the server." };
  }
  const failed = results.find((result) => !result.ok);
  if (failed) return { ok: false, status: failed.status, message: errorMessage(failed) };
  const first = results[0].data;
  const merged = { ok: true, count: first.count, x_range: first.x_range, downsampled: first.downsampled, series: {}, received: 0 };
  for (const { data } of results) {
    for (const [name, series] of Object.entries(data.series)) {
      merged.series[name] = series;
      merged.received += series.data.length;
    }
  }
  return merged;
}

/** First index whose x is >= ``value`` (``xs`` ascending). */
export function lowerBound(xs, value) {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (xs[mid] < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** First index whose x is > ``value`` (``xs`` ascending). */
export function upperBound(xs, value) {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (xs[mid] <= value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** A curve {xs, ys} from the API's [[x, y], ...], x moved by ``-shift``. */
export function curveFrom(pairs, shift = 0) {
  const xs = new Array(pairs.length);
  const ys = new Array(pairs.length);
  for (let i = 0; i < pairs.length; i += 1) {
    xs[i] = pairs[i][0] - shift;
    ys[i] = pairs[i][1];
  }
  return { xs, ys };
}

/** ``curve`` with its points from ``from`` on replaced by ``tail`` (a newer fetch of that stretch). */
export function spliceTail(curve, from, tail) {
  const keep = lowerBound(curve.xs, from);
  return { xs: curve.xs.slice(0, keep).concat(tail.xs), ys: curve.ys.slice(0, keep).concat(tail.ys) };
}

/** ``base`` outside [lo, hi] and ``detail`` inside it (a zoomed range fetched at finer resolution). */
export function overlayRange(base, detail, lo, hi) {
  const before = lowerBound(base.xs, lo);
  const after = upperBound(base.xs, hi);
  const from = lowerBound(detail.xs, lo);
  const to = upperBound(detail.xs, hi);
  return {
    xs: base.xs.slice(0, before).concat(detail.xs.slice(from, to), base.xs.slice(after)),
    ys: base.ys.slice(0, before).concat(detail.ys.slice(from, to), base.ys.slice(after)),
  };
}

/**
 * The EMA of ``ys`` (weight ``alpha`` for a new point) continuing from ``seed``, the average
 * before them: a tail or a zoomed range fetched apart would otherwise restart its average.
 */
export function continueEma(seed, ys, alpha) {
  let average = seed;
  return ys.map((value) => {
    if (value == null) return average;
    average = average == null ? value : average + alpha * (value - average);
    return average;
  });
}
