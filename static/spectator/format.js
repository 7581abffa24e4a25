// Number formats for the overlay, legends and lists.

export function isNum(value) {
  return typeof value === "number" && Number.isFinite(value);
}

export function fixed(value, digits = 2) {
  if (!isNum(value)) return "—";
  const abs = Math.abs(value);
  if (abs !== 0 && (abs >= 1e6 || abs < 1e-3)) return value.toExponential(2);
  return value.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function significant(value, digits = 4) {
  if (!isNum(value)) return "—";
  const abs = Math.abs(value);
  if (abs !== 0 && (abs >= 1e6 || abs < 1e-3)) return value.toExponential(2);
  return Number(value.toPrecision(digits)).toLocaleString("en-US", { maximumFractionDigits: 6 });
}

export function percent(value, digits = 1) {
  return isNum(value) ? `${(value * 100).toFixed(digits)}%` : "—";
}

export function integer(value) {
  return isNum(value) ? Math.round(value).toLocaleString("en-US") : "—";
}

export function duration(seconds) {
  if (!isNum(seconds) || seconds < 0) return "—";
  const s = Math.floor(seconds);
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const secs = s % 60;
  const pad = (n) => String(n).padStart(2, "0");
  return hours ? `${hours}:${pad(minutes)}:${pad(secs)}` : `${minutes}:${pad(secs)}`;
}

export function timeOfDay(epochSeconds) {
  if (!isNum(epochSeconds)) return "";
  return new Date(epochSeconds * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

/** How each overlay metric is shown. */
export const METRIC_FORMATS = {
  current_reward: (v) => fixed(v, 2),
  average_reward: (v) => fixed(v, 2),
  best_reward: (v) => fixed(v, 2),
  win_rate: (v) => percent(v),
  loss_value: (v) => significant(v, 4),
  learning_rate: (v) => (isNum(v) ? v.toExponential(1) : "—"),
  epsilon: (v) => fixed(v, 3),
  model_generation: (v) => integer(v),
  training_time_elapsed: (v) => duration(v),
  actions_per_second: (v) => fixed(v, 1),
  frames_per_second: (v) => fixed(v, 1),
  episode_length: (v) => integer(v),
  memory_usage_mb: (v) => `${fixed(v, 0)} MB`,
};

export function formatMetric(name, value) {
  if (name === "algorithm") return value ? String(value) : "—";
  const format = METRIC_FORMATS[name];
  return format ? format(value) : significant(value, 4);
}
