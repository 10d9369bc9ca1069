/**
 * The session state machine of CONTRACT §4 (v2). Pure.
 *
 *   pending  -> starting | stopping | stopped | crashed | lost
 *   starting -> running  | stopping | stopped | crashed | lost
 *   running  -> stopping | stopped  | crashed | lost
 *   stopping -> stopped  | crashed  | lost
 *   stopped, crashed, lost: terminal
 *
 * v2 follows what real host managers do: a user may stop a session that is
 * still downloading addons (stop before running), and a force kill publishes
 * `stopped` straight from `running`. The only forward step the machine does
 * not take is `pending -> running`: the host always says `starting` first,
 * so a `running` seen while `pending` overtook its predecessor.
 */
export const SESSION_STATES = ["pending", "starting", "running", "stopping", "stopped", "crashed", "lost"] as const;
export type SessionState = (typeof SESSION_STATES)[number];

/** Position along the one forward path; the three terminal states share the end. */
const RANK: Record<SessionState, number> = { pending: 0, starting: 1, running: 2, stopping: 3, stopped: 4, crashed: 4, lost: 4 };
const NEXT: Record<SessionState, readonly SessionState[]> = {
  pending: ["starting", "stopping", "stopped", "crashed", "lost"],
  starting: ["running", "stopping", "stopped", "crashed", "lost"],
  running: ["stopping", "stopped", "crashed", "lost"],
  stopping: ["stopped", "crashed", "lost"],
  stopped: [],
  crashed: [],
  lost: [],
};

export const TERMINAL_STATES: readonly SessionState[] = ["stopped", "crashed", "lost"];
/** Not yet ended: what a newer running session supersedes. */
export const ACTIVE_STATES: readonly SessionState[] = ["pending", "starting", "running", "stopping"];
/** Active states the host refreshes by keepalive; silent past the threshold, they become lost. `running` has a container to watch and is never stale. */
export const STALE_CANDIDATE_STATES: readonly SessionState[] = ["pending", "starting", "stopping"];
/** States whose arrival is announced on the external exchange. */
export const ANNOUNCED_STATES: readonly SessionState[] = ["running", "stopped", "crashed", "lost"];
/** The announced states whose events carry the session's last log lines (`log_tail`): the ones a person asks "why?" of. */
export const TAILED_STATES: readonly SessionState[] = ["crashed", "lost"];

export type Move =
  /** A legal step: apply it. */
  | "advance"
  /** Already there: a keepalive; refreshes updated_at unless terminal, changes nothing else. */
  | "same"
  /** To a state the session has passed (or anything once terminal): a stale redelivery; ack, count. */
  | "stale"
  /** pending -> running: an early message overtook its predecessor; retried for a while, then dead-lettered. */
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
