/**
 * The archive's view of `sessions`: the core's SessionBook filled from the
 * database. Once a tick the archiver asks about every session it holds
 * lines for and has not seen end (one statement for all of them), which is
 * how it learns that a session reached a terminal state and writes that
 * session's minutes at once. Polling rather than listening on the external
 * exchange: the row is the truth whoever changed it (this replica, another
 * one, the API, the stale-session sweep), it needs no queue of its own, and
 * a missed or reordered event cannot leave a minute waiting.
 */
import type { Sql } from "../db/pool.ts";
import { selectSessionFacts } from "../db/log-references.ts";
import { SessionBook, type Lookup } from "../logs/archive/sessions.ts";

export class ArchiveSessions {
  readonly book = new SessionBook();

  constructor(
    private readonly sql: Sql,
    /** True for a terminal status (events/session-machine.ts). */
    private readonly isEnded: (status: string) => boolean,
  ) {}

  /** Reads the rows of `sessionIds` that may still change; rejects when the database does not answer. */
  async refresh(sessionIds: Iterable<number>, now: number): Promise<void> {
    const ask = this.book.toAsk(sessionIds);
    if (ask.length === 0) return;
    const rows = await selectSessionFacts(this.sql, ask);
    const seen = new Set<number>();
    for (const r of rows) {
      seen.add(r.sessionId);
      this.book.found(r.sessionId, { sgcId: r.sgcId, ended: this.isEnded(r.status) });
    }
    for (const id of ask) if (!seen.has(id)) this.book.missing(id, now);
  }

  /** What to do with a session's lines: its facts, wait, or drop. Asks the database when the book has no answer. */
  async resolve(sessionId: number, now: number): Promise<Lookup> {
    const known = this.book.lookup(sessionId, now);
    if (known.kind !== "wait") return known;
    await this.refresh([sessionId], now);
    return this.book.lookup(sessionId, now);
  }

  /** The database refused a row for the session (foreign key): it is gone now. */
  gone(sessionId: number, now: number): void {
    this.book.missing(sessionId, now);
  }
}
