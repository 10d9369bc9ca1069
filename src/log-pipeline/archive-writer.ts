/**
 * Writes one taken window (one session's lines of one UTC minute) as one
 * archive object with its log_references row (CONTRACT §6), in this order:
 *
 *   look up sgc_id → claim a part and INSERT its row `pending` (one
 *   statement) → put the gzip object → UPDATE the row `complete` → (the
 *   caller acks the lines)
 *
 * so a line is acked only once its object is stored and its row complete,
 * and the API never reads a row whose object is not there. Every step is
 * retried with backoff until it works, the lines held (unacked) meanwhile;
 * each retry resumes where the last attempt stopped, and every step may be
 * run again after an answer was lost (a claim claims another part, its
 * lost row staying `pending` for the crash-leftover sweep; put accepts its
 * own earlier write; the UPDATE is idempotent).
 *
 * Parts never collide: the part number comes from the claim (unique across
 * replicas), and a key that turns out taken anyway (an object left by
 * upstream or by a crash) makes the writer drop its row and claim again. An
 * object is never rewritten.
 *
 * A session with no row yet ends the write at once (`not_yet`): the
 * archiver puts the lines back and tries again on a later tick, until the
 * core's SessionBook says to drop them (logs/archive/sessions.ts).
 *
 * The write stops early, without acking, when the lines' channel has closed
 * (the broker has requeued them: they will come again, so the row and
 * object are removed and the lines forgotten) or when shutdown's deadline
 * passes (the row stays pending for the crash-leftover sweep).
 */
import { promisify } from "node:util";
import { gzip as gzipCallback, gunzip as gunzipCallback } from "node:zlib";
import type { AckChannel } from "../amqp/acker.ts";
import { completeReference, deletePendingReference, insertPendingReference, selectCompletePaths, type MinuteOf } from "../db/log-references.ts";
import type { Sql } from "../db/pool.ts";
import type { Logger } from "../log.ts";
import { countCopies } from "../logs/archive/duplicates.ts";
import { formatLines, parseLines, type ArchivedLine } from "../logs/archive/format.ts";
import { KEY_TAIL, objectKey } from "../logs/archive/keys.ts";
import type { TakenWindow } from "../logs/archive/window.ts";
import { ObjectExistsError, type ObjectStore } from "../storage/store.ts";
import { errorMessage } from "../util/errors.ts";
import { OncePer } from "../util/rate-limit.ts";
import { backoff, sleep } from "../util/time.ts";
import type { ArchiveCounters, Step } from "./archive-metrics.ts";
import type { ArchiveSessions } from "./archive-sessions.ts";

const gzip = promisify(gzipCallback);
const gunzip = promisify(gunzipCallback);

/** One held delivery: what the ack needs, and whether the broker sent it before. */
export interface Held {
  readonly deliveryTag: number;
  readonly channel: AckChannel;
  readonly redelivered: boolean;
}

export type WriteResult =
  | { kind: "archived"; part: number }
  | { kind: "unknown_session"; missingForMs: number }
  /** The session has no row yet: the lines go back to the windows and are tried again on a later tick. */
  | { kind: "not_yet" }
  /** The channel of some lines closed first: these (on open channels) go back to the windows. */
  | { kind: "given_back"; lines: ArchivedLine[]; handles: Held[] }
  /** Shutdown's deadline passed: nothing acked, the broker redelivers. */
  | { kind: "abandoned" };

// Backoff 250 ms doubling to 5 s: a store or database back from an outage
// is used again within 5 s, while a handful of writers retrying cost the
// outage nothing.
const RETRY_BASE_MS = 250;
const RETRY_CAP_MS = 5_000;
// One warning per failing step per 30 s, however many writes fail.
const WARN_EVERY_MS = 30_000;
// A session's foreign key: its row is gone (deleted sessions take their log rows with them).
const FOREIGN_KEY_VIOLATION = "23503";

export interface ArchiveWriterDeps {
  sql: Sql;
  store: ObjectStore;
  sessions: ArchiveSessions;
  counters: ArchiveCounters;
  logger: Logger;
  /** Aborted when shutdown's deadline passes: writes stop where they are. */
  signal: AbortSignal;
  /** True once shutdown began: lines of a session not found yet are left to the next start instead of waited for. */
  draining(): boolean;
}

/** Writes whose last attempt failed, for readiness: the archive is down while any is. */
export class WriteHealth {
  readonly #failing = new Map<number, { since: number; step: Step; error: string }>();

  failed(job: number, step: Step, err: unknown): void {
    const since = this.#failing.get(job)?.since ?? Date.now();
    this.#failing.set(job, { since, step, error: errorMessage(err) });
  }

  settled(job: number): void {
    this.#failing.delete(job);
  }

  get failing(): number {
    return this.#failing.size;
  }

  /** Null while every write goes through; else why not, for /readyz. */
  problem(): string | null {
    let oldest: { since: number; step: Step; error: string } | undefined;
    for (const f of this.#failing.values()) if (!oldest || f.since < oldest.since) oldest = f;
    if (!oldest) return null;
    return `${this.#failing.size} archive write(s) failing for ${Math.round((Date.now() - oldest.since) / 1000)} s (${oldest.step}: ${oldest.error})`;
  }
}

export class ArchiveWriter {
  readonly health = new WriteHealth();
  readonly #warned = new OncePer(WARN_EVERY_MS);
  #jobs = 0;

  constructor(private readonly deps: ArchiveWriterDeps) {}

  async write(w: TakenWindow<Held>): Promise<WriteResult> {
    const { sql, store, sessions, counters, signal } = this.deps;
    const job = ++this.#jobs;
    const bytes = new Uint8Array(await gzip(formatLines(w.lines)));
    let sgcId: number | undefined;
    let part: number | undefined;
    let key = "";
    let logId: number | undefined;
    let stored = false;
    let putTried = false;
    let copiesCounted = false;
    let failures = 0;
    try {
      for (;;) {
        if (signal.aborted) return { kind: "abandoned" };
        if (w.handles.some((h) => h.channel.closed)) {
          await this.#release(logId, putTried ? key : undefined);
          return giveBack(w);
        }
        let step: Step = "lookup";
        try {
          if (sgcId === undefined) {
            const found = await sessions.resolve(w.sessionId, Date.now());
            if (found.kind === "drop") return { kind: "unknown_session", missingForMs: found.missingForMs };
            // Not found yet: back to the windows for a later tick rather
            // than waiting here and holding one of the few write slots.
            if (found.kind === "wait") return this.deps.draining() ? { kind: "abandoned" } : { kind: "not_yet" };
            sgcId = found.fact.sgcId;
          }
          const minute: MinuteOf = { sessionId: w.sessionId, sgcId, minuteMs: w.minuteMs };
          if (!copiesCounted) {
            copiesCounted = true;
            // Not `+= await`: that reads the counter before the wait, and a
            // publish (which zeroes it) or another write meanwhile would be lost.
            const copies = await this.#countCopies(w, minute);
            counters.duplicates += copies;
          }
          step = "claim";
          if (part === undefined) {
            // Claim a part and insert its pending row in one round trip.
            const first = store.filePath(objectKey(sgcId, w.sessionId, w.minuteMs, 0));
            const claimed = await insertPendingReference(sql, {
              ...minute,
              pathHead: first.slice(0, -KEY_TAIL.length),
              pathTail: KEY_TAIL,
              startMs: w.startTime,
              endMs: w.endTime,
              lineCount: w.count,
              source: w.source,
            });
            const claimedKey = objectKey(sgcId, w.sessionId, w.minuteMs, claimed.part);
            // The statement spells the path out as keys.ts does. Never write
            // an object its row does not name (the row stays pending for the sweep).
            if (claimed.filePath !== store.filePath(claimedKey)) throw new Error(`archive row names ${claimed.filePath}, not ${store.filePath(claimedKey)}`);
            part = claimed.part;
            logId = claimed.logId;
            key = claimedKey;
            stored = putTried = false;
          }
          step = "put";
          if (!stored) {
            putTried = true;
            await store.put(key, bytes, signal);
            stored = true;
          }
          step = "complete";
          if (!(await completeReference(sql, logId!))) {
            // Another replica took the row for a crash leftover (this write
            // outlasted the lease): write the lines again under a new part.
            this.deps.logger.warn("archive row was removed while its object was written; writing the lines again", { session_id: w.sessionId, key });
            await store.delete(key).catch(() => {});
            part = undefined;
            continue;
          }
          if (failures > 0) this.deps.logger.info("archive write went through after failures", { session_id: w.sessionId, key, failed_attempts: failures });
          return { kind: "archived", part };
        } catch (err) {
          if (signal.aborted) return { kind: "abandoned" };
          if (err instanceof ObjectExistsError) {
            // Someone else's object has the key: leave it, claim the next part.
            this.deps.logger.warn("archive key already taken by another object; claiming the next part", { key });
            await this.#release(logId, undefined);
            part = undefined;
            continue;
          }
          if ((err as { code?: string }).code === FOREIGN_KEY_VIOLATION) {
            sessions.gone(w.sessionId, Date.now());
            sgcId = undefined;
            continue;
          }
          failures++;
          counters.failures[step]++;
          this.health.failed(job, step, err);
          const warn = this.#warned.take(step);
          if (warn.allowed) {
            this.deps.logger.warn("archive write failed; retrying with the lines held", {
              step,
              error: errorMessage(err),
              session_id: w.sessionId,
              minute: new Date(w.minuteMs).toISOString(),
              also_failed_since_last: warn.suppressed,
            });
          }
          await sleep(backoff(failures, RETRY_BASE_MS, RETRY_CAP_MS), signal).catch(() => {});
        }
      }
    } finally {
      this.health.settled(job);
    }
  }

  /** Removes this write's own pending row and then its object, best effort (a row left pending is the crash-leftover sweep's). */
  async #release(logId: number | undefined, key: string | undefined): Promise<void> {
    if (logId === undefined) return;
    try {
      const deleted = await deletePendingReference(this.deps.sql, logId);
      if (deleted && key) await this.deps.store.delete(key);
    } catch (err) {
      this.deps.logger.debug("could not remove an unfinished archive row; the crash-leftover sweep will", { log_id: logId, error: errorMessage(err) });
    }
  }

  /**
   * Redelivered lines already in a complete object of their minute, for the
   * duplicates metric. Best effort: a failure here only leaves them uncounted.
   */
  async #countCopies(w: TakenWindow<Held>, minute: MinuteOf): Promise<number> {
    const candidates = w.lines.filter((_, i) => w.handles[i]!.redelivered);
    if (candidates.length === 0) return 0;
    try {
      const archived: ArchivedLine[] = [];
      for (const path of await selectCompletePaths(this.deps.sql, minute)) {
        const key = this.deps.store.keyOf(path);
        const bytes = key ? await this.deps.store.get(key, this.deps.signal) : null;
        if (bytes) archived.push(...parseLines(new TextDecoder().decode(await gunzip(bytes))));
      }
      return countCopies(candidates, archived);
    } catch (err) {
      this.deps.logger.debug("could not check redelivered lines against the archive", { session_id: w.sessionId, error: errorMessage(err) });
      return 0;
    }
  }
}

function giveBack(w: TakenWindow<Held>): WriteResult {
  const lines: ArchivedLine[] = [];
  const handles: Held[] = [];
  w.handles.forEach((h, i) => {
    if (h.channel.closed) return;
    lines.push(w.lines[i]!);
    handles.push(h);
  });
  return { kind: "given_back", lines, handles };
}
