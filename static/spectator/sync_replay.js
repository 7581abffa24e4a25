// The shared clock of the comparison page's synchronized replay: pure, no DOM, no timers.
//
// Its states and commands mirror metrics/replay.py (the room page's replay) with one
// difference: the clock counts positions, the step index from each episode's start, over the
// longest episode shown, so panes line up by index whatever step numbers their episodes
// recorded. A pane whose episode is shorter holds its last step and reads "ended" once the
// clock reaches it, while the longer ones go on.
//
//   command     stopped      playing      paused       ended
//   select(e)   stopped @0   stopped @0   stopped @0   stopped @0
//   play        playing @0   (same)       playing @p   playing @0
//   pause       (same)       paused @p    (same)       (same)
//   stop        stopped @0   stopped @0   stopped @0   stopped @0
//   seek(s)     paused @s    playing @s   paused @s    paused @s
//   step(±n)    paused @p±n  paused @p±n  paused @p±n  paused @p±n
//   speed(x)    (same, x)    (same, x)    (same, x)    (same, x)
//   loop(b)     (same, b)    (same, b)    (same, b)    (same, b)
//   advance     (same)       playing @p+1 (same)       (same)
//
// Bounds as there: step stops at the first and last positions, seek takes a position inside
// them, advance from the last position ends (or goes back to the first with loop), speed is
// 0.1 to 10; play, pause, seek and step need a selected episode.

export const MIN_SPEED = 0.1;
export const MAX_SPEED = 10;
export const MAX_STEP_DELTA = 100000;
export const STATUSES = Object.freeze(["stopped", "playing", "paused", "ended"]);

export class SyncReplayError extends Error {
  constructor(field, message) {
    super(`${field}: ${message}`);
    this.field = field;
    this.detail = message;
  }
}

const isInteger = (value) => typeof value === "number" && Number.isInteger(value);

/** The clock before any episode is chosen. */
export function initialState({ speed = 1, loop = false } = {}) {
  return Object.freeze({ episode: null, length: 0, position: 0, status: "stopped", speed, loop });
}

function replace(state, changes) {
  return Object.freeze({ ...state, ...changes });
}

function needEpisode(state) {
  if (state.episode == null) throw new SyncReplayError("episode", "Select a recorded episode first.");
}

export function atEnd(state) {
  return state.length > 0 && state.position === state.length - 1;
}

/** Show ``episode`` (any key naming the panes' choice) over ``length`` positions, stopped at the first. */
export function select(state, episode, length) {
  if (episode == null) throw new SyncReplayError("episode", "Must name an episode.");
  if (!isInteger(length) || length < 1) throw new SyncReplayError("episode", "No pane has recorded steps.");
  return replace(state, { episode, length, position: 0, status: "stopped" });
}

export function play(state) {
  needEpisode(state);
  if (state.status === "playing") return state;
  return replace(state, { position: state.status === "paused" ? state.position : 0, status: "playing" });
}

export function pause(state) {
  needEpisode(state);
  if (state.status !== "playing") return state;
  return replace(state, { status: "paused" });
}

export function stop(state) {
  return replace(state, { position: 0, status: "stopped" });
}

/** Go to ``position``; playing keeps playing. */
export function seek(state, position) {
  needEpisode(state);
  if (!isInteger(position)) throw new SyncReplayError("step", "Must be an integer step.");
  if (position < 0 || position > state.length - 1) throw new SyncReplayError("step", `Steps go from 0 to ${state.length - 1}.`);
  return replace(state, { position, status: state.status === "playing" ? "playing" : "paused" });
}

/** Move ``delta`` positions (negative: back), stopping at either end; pauses. */
export function stepBy(state, delta) {
  needEpisode(state);
  if (!isInteger(delta) || delta === 0 || Math.abs(delta) > MAX_STEP_DELTA) {
    throw new SyncReplayError("delta", `Must be a non-zero integer of at most ${MAX_STEP_DELTA} either way.`);
  }
  const position = Math.min(Math.max(state.position + delta, 0), state.length - 1);
  return replace(state, { position, status: "paused" });
}

export function withSpeed(state, speed) {
  if (typeof speed !== "number" || !Number.isFinite(speed) || speed < MIN_SPEED || speed > MAX_SPEED) {
    throw new SyncReplayError("speed", `Must be a number from ${MIN_SPEED} to ${MAX_SPEED} (1 = recorded pace).`);
  }
  return replace(state, { speed });
}

export function withLoop(state, loop) {
  if (typeof loop !== "boolean") throw new SyncReplayError("loop", "Must be true or false.");
  return replace(state, { loop });
}

/** One position further while playing: at the last, end (or start over with loop). */
export function advance(state) {
  if (state.status !== "playing") return state;
  if (!atEnd(state)) return replace(state, { position: state.position + 1 });
  if (state.loop) return replace(state, { position: 0 });
  return replace(state, { status: "ended" });
}

/**
 * What a pane of ``paneLength`` steps shows at the clock's state: the position it holds (its
 * last step once the clock has gone past it) and its own status ("ended" once it reached its
 * last step while a longer pane goes on, or when the clock ended).
 */
export function paneView(state, paneLength) {
  if (!paneLength) return { position: null, status: "empty" };
  const last = paneLength - 1;
  const position = Math.min(state.position, last);
  const shorter = paneLength < state.length;
  const ended = state.status === "ended" || (shorter && state.position >= last);
  return { position, status: ended ? "ended" : state.status };
}

/** The same commands by name, as the room page's socket messages spell them. */
export function apply(state, action, value) {
  switch (action) {
    case "play":
      return play(state);
    case "pause":
      return pause(state);
    case "stop":
      return stop(state);
    case "seek":
      return seek(state, value);
    case "step":
      return stepBy(state, value);
    case "step_forward":
      return stepBy(state, Math.abs(value ?? 1));
    case "step_back":
      return stepBy(state, -Math.abs(value ?? 1));
    case "speed":
      return withSpeed(state, value);
    case "loop":
      return withLoop(state, value);
    case "advance":
      return advance(state);
    default:
      throw new SyncReplayError("action", `${action} is not a clock command.`);
  }
}
