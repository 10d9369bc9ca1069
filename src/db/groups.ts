/**
 * Statements in groups: every call that arrives within one turn of the
 * event loop is written by one statement (one round trip, one transaction,
 * one WAL flush) instead of one each. Callers still get their own answer,
 * and only after the group has committed, so the consumer's per-entity
 * ordering (its keyed queue: an entity's next message starts only once this
 * one is answered) is untouched, and an entity is in a group at most once.
 *
 * When the statement fails, each entity's row runs alone, so one row's
 * trouble (a lock held past the statement timeout, a bad value) is charged
 * to that row's messages only, as when every message had its statement.
 */
import { isConnectionLoss } from "./errors.ts";

// 1,000 rows per statement keeps one statement well under a millisecond of
// planning and a few KB of parameters; larger groups gain nothing measurable.
const MAX_GROUP = 1000;
// At most this many statements of one writer at a time: what arrives while
// they run waits for one to end and goes as one bigger group, so under load
// the groups grow instead of the statements. A statement costs PostgreSQL
// ~250 µs of CPU before its rows (measured here on the real schema: a
// heartbeat costs its backend 72 µs in groups of 5, 20 µs in groups of 200;
// a session move 317 µs alone, 40 µs in groups of 50). bench:events made
// 0.14 transactions a message with a group per turn of the event loop,
// 0.093 with three statements at a time, 0.078 with one. Two, not one: a
// group stuck on a locked row (until the statement timeout) leaves the other
// to carry everything else.
const MAX_IN_FLIGHT = 2;

interface Waiter<I, O> {
  key: number;
  input: I;
  resolve(output: O): void;
  reject(err: unknown): void;
}

export interface GroupStatement<I, O> {
  /** Runs the inputs (one per key) as one statement; the answer of each key it found. */
  run(inputs: I[]): Promise<Map<number, O>>;
  /** The answer for a key the statement did not return (no such row). */
  missing(input: I): O;
}

export class GroupWriter<I, O> {
  private group: Waiter<I, O>[] = [];
  private scheduled = false;
  private inFlight = 0;

  constructor(private readonly statement: GroupStatement<I, O>) {}

  /** `input`'s answer once its group has committed. Calls with the same key in one group share one row. */
  write(key: number, input: I): Promise<O> {
    return new Promise((resolve, reject) => {
      this.group.push({ key, input, resolve, reject });
      if (this.group.length >= MAX_GROUP) this.flush();
      else this.schedule();
    });
  }

  /** A flush at the end of this turn, when a statement may start; else the next statement to end starts it. */
  private schedule(): void {
    if (this.scheduled || this.inFlight >= MAX_IN_FLIGHT) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.scheduled = false;
    const group = this.group;
    this.group = [];
    if (group.length === 0) return;
    this.inFlight++;
    const byKey = new Map<number, Waiter<I, O>[]>();
    for (const w of group) {
      const same = byKey.get(w.key);
      if (same) same.push(w);
      else byKey.set(w.key, [w]);
    }
    const inputs = [...byKey.values()].map((ws) => ws[0]!.input);
    const ended = this.statement.run(inputs).finally(() => {
      this.inFlight--;
      if (this.group.length > 0) this.schedule();
    });
    ended.then(
      (answers) => this.answer(group, answers),
      (err) => {
        // A lost connection is nobody's row: the callers run again (as a
        // group), rather than one statement per row on a pool that may be
        // losing more connections.
        if (byKey.size === 1 || isConnectionLoss(err)) for (const w of group) w.reject(err);
        else for (const ws of byKey.values()) void this.alone(ws);
      },
    );
  }

  private async alone(waiters: Waiter<I, O>[]): Promise<void> {
    try {
      this.answer(waiters, await this.statement.run([waiters[0]!.input]));
    } catch (err) {
      for (const w of waiters) w.reject(err);
    }
  }

  private answer(waiters: Waiter<I, O>[], answers: Map<number, O>): void {
    for (const w of waiters) w.resolve(answers.get(w.key) ?? this.statement.missing(w.input));
  }
}
