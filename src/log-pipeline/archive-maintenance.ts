/**
 * The archive's housekeeping, at start and then every MAINTENANCE_EVERY_MS,
 * by one replica at a time (a database advisory lock; the others skip that
 * turn):
 *
 * 1. Crash leftovers: rows still `pending` (or `deleting`) LEASE_SECONDS
 *    after they were created. Their lines were never acked, so the broker
 *    has redelivered them and they are (or will be) archived under another
 *    part: the row and its object are removed, never finished.
 * 2. Retention (LOG_ARCHIVE_RETENTION_DAYS set): rows whose lines began more
 *    than that many days ago, and their objects.
 * 3. Part counters of minutes older than a day (see PRUNE_PARTS_AFTER_S).
 *
 * A row is removed in three steps, each safe to cut short: mark it
 * `deleting` (the API stops reading it), delete its object unless another
 * live row names the same object (upstream let rows share one), delete the
 * row. A crash between them leaves a `deleting` row, which step 1 finds
 * again. Only rows of this store (file_path under its location) are
 * touched. Batches of BATCH rows, so no statement holds many row locks.
 */
import {
  deleteMarkedReferences,
  isPathInUse,
  markExpiredReferences,
  markStaleReferences,
  pruneParts,
  type DoomedReference,
} from "../db/log-references.ts";
import { tryAdvisoryLock } from "../db/advisory-lock.ts";
import type { Sql } from "../db/pool.ts";
import type { Logger } from "../log.ts";
import type { ObjectStore } from "../storage/store.ts";
import { errorMessage } from "../util/errors.ts";
import { sleep } from "../util/time.ts";
import type { ArchiveCounters, RemovedReason } from "./archive-metrics.ts";

// 5 minutes: a healthy write holds its row pending for well under a second,
// and one S3 request has a 30 s deadline (storage/s3.ts), so 5 minutes is
// ten of those. A live writer stuck longer (an outage) that loses its row
// to this sweep notices when its UPDATE finds no pending row and writes the
// lines again under a new part, so the lease only has to make that rare.
export const LEASE_SECONDS = 300;
// Every 5 minutes ("at most every few minutes"): a leftover is removed
// within LEASE_SECONDS + 5 min of the crash; retention is by whole days.
export const MAINTENANCE_EVERY_MS = 5 * 60_000;
// 500 rows: each needs an object delete (one S3 request), so a batch is a
// few seconds of work and never a long-held set of row locks.
const BATCH = 500;
// A day: lines for a minute a day old come only from a host clock that is
// wrong; a claim then starts after the minute's existing rows, and a taken
// key makes the writer claim again, so forgetting the counter is safe.
const PRUNE_PARTS_AFTER_S = 24 * 3600;
// 2 s to connect and take the lock, the readiness checks' own deadline.
const LOCK_TIMEOUT_MS = 2_000;
// "manmanlogarc" shortened to 64 bits, as migrate.ts's key spells "manman";
// different from it, so a migration never waits for housekeeping.
export const LOCK_KEY = 0x6d6d6c6f67617263n;

export interface MaintenanceDeps {
  sql: Sql;
  databaseUrl: string;
  store: ObjectStore;
  counters: ArchiveCounters;
  logger: Logger;
  /** LOG_ARCHIVE_RETENTION_DAYS; undefined keeps everything. */
  retentionDays?: number;
}

/** Runs one turn now (if no other replica is running one). Never throws. */
export async function maintainArchive(deps: MaintenanceDeps, signal: AbortSignal): Promise<void> {
  const { logger } = deps;
  let release: (() => Promise<void>) | null = null;
  try {
    release = await tryAdvisoryLock({ url: deps.databaseUrl, key: LOCK_KEY, timeoutMs: LOCK_TIMEOUT_MS });
    if (!release) return;
    const prefix = `${deps.store.location}/`;
    const leftovers = await removeAll(deps, "crash_leftover", () => markStaleReferences(deps.sql, prefix, LEASE_SECONDS, BATCH), signal);
    if (leftovers > 0) logger.info("removed archive rows left unfinished by a crash (their lines were archived again)", { rows: leftovers });
    if (deps.retentionDays !== undefined) {
      const days = deps.retentionDays;
      const expired = await removeAll(deps, "retention", () => markExpiredReferences(deps.sql, prefix, days, BATCH), signal);
      if (expired > 0) logger.info("removed archived logs past retention", { rows: expired, retention_days: days });
    }
    await pruneParts(deps.sql, PRUNE_PARTS_AFTER_S);
  } catch (err) {
    if (!signal.aborted) logger.warn("archive housekeeping failed; trying again next turn", { error: errorMessage(err) });
  } finally {
    await release?.();
  }
}

/** Marks and removes batches until a batch comes back short; the rows removed. */
async function removeAll(deps: MaintenanceDeps, reason: RemovedReason, mark: () => Promise<DoomedReference[]>, signal: AbortSignal): Promise<number> {
  let total = 0;
  while (!signal.aborted) {
    const batch = await mark();
    const ids: number[] = [];
    for (const r of batch) {
      const key = deps.store.keyOf(r.filePath);
      if (key && !(await isPathInUse(deps.sql, r.sessionId, r.filePath))) await deps.store.delete(key, signal);
      ids.push(r.logId);
    }
    const removed = await deleteMarkedReferences(deps.sql, ids);
    deps.counters.removed[reason] += removed;
    total += removed;
    if (batch.length < BATCH) break;
  }
  return total;
}

/** maintainArchive at once, then every MAINTENANCE_EVERY_MS until the signal; settles after the last turn. */
export async function runArchiveMaintenance(deps: MaintenanceDeps, signal: AbortSignal): Promise<void> {
  while (!signal.aborted) {
    await maintainArchive(deps, signal);
    await sleep(MAINTENANCE_EVERY_MS, signal).catch(() => {});
  }
}
