/**
 * What the archive knows about the sessions it holds lines for: each one's
 * sgc_id (part of the object key and the row, never changes) and whether it
 * has ended (a terminal state is final, CONTRACT §4, so an ended session is
 * never asked about again), plus since when a session was found missing.
 *
 * A line for a session with no row: the API inserts the row before any host
 * starts the session, so this means the session was deleted (its rows go
 * with it, ON DELETE CASCADE) or a publisher sent a wrong id. Its lines are
 * held and looked up again for UNKNOWN_SESSION_WAIT_MS, in case the row is
 * still being inserted, then dropped (acked, counted, logged): a row can't
 * be written without the session (foreign key), and holding them for ever
 * would pin the broker's unacked window. Pure: the caller passes the time.
 */

// 30 s: an INSERT the API has not committed yet is visible within
// milliseconds; 30 s also covers a replica reading a lagging connection.
// Lines that old for a session that does not exist will not find one later.
export const UNKNOWN_SESSION_WAIT_MS = 30_000;
// 10,000 sessions: more than a fleet runs at once; past it the least
// recently used are forgotten and looked up again when a line comes.
const MAX_SESSIONS = 10_000;

export interface SessionFact {
  sgcId: number;
  ended: boolean;
}

export type Lookup = { kind: "known"; fact: SessionFact } | { kind: "wait" } | { kind: "drop"; missingForMs: number };

export class SessionBook {
  readonly #known = new Map<number, SessionFact>();
  readonly #missingSince = new Map<number, number>();

  constructor(private readonly maxSessions = MAX_SESSIONS) {}

  get(sessionId: number): SessionFact | undefined {
    return this.#known.get(sessionId);
  }

  /** The session's row was read. */
  found(sessionId: number, fact: SessionFact): void {
    this.#missingSince.delete(sessionId);
    this.#known.delete(sessionId); // re-insert: Map order is least recently used first
    this.#known.set(sessionId, fact);
    if (this.#known.size > this.maxSessions) this.#known.delete(this.#known.keys().next().value!);
  }

  /** The session has no row now (the lookup answered, with nothing). */
  missing(sessionId: number, now: number): void {
    this.#known.delete(sessionId);
    if (!this.#missingSince.has(sessionId)) this.#missingSince.set(sessionId, now);
    if (this.#missingSince.size > this.maxSessions) this.#missingSince.delete(this.#missingSince.keys().next().value!);
  }

  /** What to do with a session's lines now, from what the book knows. */
  lookup(sessionId: number, now: number, waitMs = UNKNOWN_SESSION_WAIT_MS): Lookup {
    const fact = this.#known.get(sessionId);
    if (fact) return { kind: "known", fact };
    const since = this.#missingSince.get(sessionId);
    if (since !== undefined && now - since >= waitMs) return { kind: "drop", missingForMs: now - since };
    return { kind: "wait" };
  }

  /** Of `sessionIds`, those worth asking the database about: not known to have ended. */
  toAsk(sessionIds: Iterable<number>): number[] {
    const out: number[] = [];
    for (const id of sessionIds) if (!this.#known.get(id)?.ended) out.push(id);
    return out;
  }

  /** Sessions known to have ended, of `sessionIds`. */
  ended(sessionIds: Iterable<number>): number[] {
    const out: number[] = [];
    for (const id of sessionIds) if (this.#known.get(id)?.ended) out.push(id);
    return out;
  }
}
