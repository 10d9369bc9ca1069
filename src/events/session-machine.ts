/**
 * The session state machine of CONTRACT §4. Pure.
 *
 *   pending  -> starting | crashed | lost
 *   starting -> running  | crashed | lost
 *   running  -> stopping | crashed | lost
 *   stopping -> stopped  | crashed | lost
 *   stopped, crashed, lost: terminal
 */
export const SESSION_STATES = ["pending", "starting", "running", "stopping", "stopped", "crashed", "lost"] as const;
export type SessionState = (typeof SESSION_STATES)[number];

/** Position along the one forward path; the three terminal states share the end. */
const RANK: Record<SessionState, number> = { pending: 0, starting: 1, running: 2, stopping: 3, stopped: 4, crashed: 4, lost: 4 };
const NEXT: Record<SessionState, readonly SessionState[]> = {
  pending: ["starting", "crashed", "lost"],
  starting: ["running", "crashed", "lost"],
  running: ["stopping", "crashed", "lost"],
  stopping: ["stopped", "crashed", "lost"],
  stopped: [],
  crashed: [],
  lost: [],
};

export const TERMINAL_STATES: readonly SessionState[] = ["stopped", "crashed", "lost"];
/** Not yet ended: what a newer running session supersedes and stale sweeps look at. */
export const ACTIVE_STATES: readonly SessionState[] = ["pending", "starting", "running", "stopping"];
/** States whose arrival is announced on the external exchange. */
export const ANNOUNCED_STATES: readonly SessionState[] = ["running", "stopped", "crashed", "lost"];

export type Move =
  /** A legal step: apply it. */
  | "advance"
  /** Already there: accepted, nothing changes. */
  | "same"
  /** To a state the session has passed (or anything once terminal): a stale redelivery; ack, count. */
  | "stale"
  /** Forward, but skipping the machine (pending -> stopped): a permanent error; dead-letter. */
  | "skip";

export function classifyMove(from: SessionState, to: SessionState): Move {
  if (from === to) return "same";
  if (NEXT[from].includes(to)) return "advance";
  if (isTerminal(from) || RANK[to] <= RANK[from]) return "stale";
  return "skip";
}

export function isTerminal(state: SessionState): boolean {
  return TERMINAL_STATES.includes(state);
}

/** The states from which `to` is a legal step: the WHERE of the conditional UPDATE. */
export function legalPredecessors(to: SessionState): SessionState[] {
  return SESSION_STATES.filter((from) => NEXT[from].includes(to));
}

export function isSessionState(s: string): s is SessionState {
  return (SESSION_STATES as readonly string[]).includes(s);
}
