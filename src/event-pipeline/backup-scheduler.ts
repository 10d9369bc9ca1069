/**
 * Scheduled backups (UPSTREAM.md §4, docs/backups.md), wired: every
 * BACKUP_SCAN_INTERVAL_SECONDS, on every replica,
 *
 * 1. the stale sweep fails backups `pending` or `running` for longer than
 *    BACKUP_STALE_HOURS (one statement, safe on every replica);
 * 2. the scan, under the database's scan lock (one replica at a time, see
 *    db/backup-schedule.ts): the due (config, game server config) pairs get
 *    a `pending` backups row each, with a pre-signed PUT URL for its key and
 *    its command in the outbox, written by one statement; the commands are
 *    then published to `manman` with confirms, and what is not confirmed is
 *    left to the outbox relay. The first scan runs at start, as upstream's.
 *
 * The scheduler needs S3 settings (to sign URLs) and the ManManV2 API's
 * tables; without either it stays off, says why once at start and shows
 * manman_backup_scheduler_enabled 0. The sweep runs whenever the tables
 * exist (backups the API triggers go stale too).
 */
import { INTERNAL_EXCHANGE } from "../amqp/topology.ts";
import type { Config } from "../config.ts";
import {
  failStaleBackups, insertBackupsWithCommands, listDueTargets, missingTables, reserveBackupIds, withScanLock, type NewBackup,
} from "../db/backup-schedule.ts";
import type { Sql } from "../db/pool.ts";
import {
  BACKUP_COMMAND_PROPERTIES, BACKUP_COMMAND_TTL_MS, BACKUP_CONTENT_TYPE, SCHEDULER_TABLES, backupCommandRoutingKey, backupKey,
  renderBackupCommand, renderPreActions, schedulerSwitch, staleBackupError, type BackupTarget,
} from "../events/backup-schedule.ts";
import type { OutboxEvent } from "../events/store.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import { Presigner } from "../storage/presign.ts";
import { errorMessage } from "../util/errors.ts";
import { OncePer } from "../util/rate-limit.ts";
import { backoff, sleep } from "../util/time.ts";
import type { Announcer } from "./announcer.ts";

// After a start the stale sweep waits 5 min: status messages that queued
// while the processor was down are applied first (the consumer applies
// thousands a second, and a standby needs FAILOVER_SECONDS to take over),
// else a backup that did complete would be failed for good. Five minutes
// more on a judgement of hours costs nothing.
const STALE_SWEEP_GRACE_MS = 5 * 60_000;
// Rows per insert statement: 500 commands (~1 KB each, the URL included)
// are a statement of ~0.5 MB that commits in well under the statement
// timeout; more due pairs than that take several statements, each atomic.
const INSERT_CHUNK = 500;
// A pre-action that cannot be rendered is named once an hour per action,
// not once per scan and game server config.
const SKIPPED_ACTION_LOG_MS = 3_600_000;

export interface BackupSchedulerDeps {
  sql: Sql;
  announcer: Announcer;
  logger: Logger;
  metrics: Metrics;
}

export interface BackupScheduler {
  enabled: boolean;
  stopped: Promise<void>;
}

/** What one scan needs; `scanBackups` is exported for tests that play several replicas. */
export interface ScanDeps {
  url: string;
  statementTimeoutMs: number;
  presigner: Presigner;
  /** Publishes committed outbox rows (the announcer's fast path). */
  publish(events: readonly OutboxEvent[]): Promise<void>;
  logger: Logger;
  metrics: Metrics;
  skippedActions?: OncePer;
}

export function createPresigner(config: Config): Presigner | undefined {
  if (!config.s3Bucket || !config.s3AccessKey || !config.s3SecretKey) return undefined;
  return new Presigner({
    bucket: config.s3Bucket, region: config.s3Region, endpoint: config.s3Endpoint, publicEndpoint: config.s3PublicEndpoint,
    accessKeyId: config.s3AccessKey, secretAccessKey: config.s3SecretKey,
  });
}

export function startBackupScheduler(config: Config, deps: BackupSchedulerDeps, signal: AbortSignal, sweepGraceMs = STALE_SWEEP_GRACE_MS): BackupScheduler {
  const log = deps.logger.child({ component: "backup_scheduler" });
  const startedAt = Date.now();
  const scheduler: BackupScheduler = { enabled: false, stopped: Promise.resolve() };
  scheduler.stopped = (async () => {
    const missing = await untilAnswered(() => missingTables(deps.sql, SCHEDULER_TABLES), log, signal);
    if (missing === undefined) return;
    const decision = schedulerSwitch({ s3Bucket: config.s3Bucket, s3AccessKey: config.s3AccessKey, s3SecretKey: config.s3SecretKey, missingTables: missing });
    const presigner = createPresigner(config);
    scheduler.enabled = decision.enabled;
    deps.metrics.set("manman_backup_scheduler_enabled", "1 when this process schedules backups, 0 when it can't (see the start log line)", decision.enabled ? 1 : 0);
    if (decision.enabled) {
      log.info("backup scheduler on", { interval_seconds: config.backupScanIntervalSeconds, stale_hours: config.backupStaleHours, bucket: config.s3Bucket, upload_endpoint: presigner!.base });
    } else {
      // A ManManV2 database whose backups will not run deserves a warning; a standalone one has none to run.
      (missing.length === 0 ? log.warn : log.info)("backup scheduler off", { reason: decision.reason });
    }
    const scanDeps: ScanDeps = {
      url: config.postgresUrl, statementTimeoutMs: config.dbStatementTimeoutMs, presigner: presigner!,
      publish: (events) => deps.announcer.publish(events), logger: log, metrics: deps.metrics, skippedActions: new OncePer(SKIPPED_ACTION_LOG_MS),
    };
    let failing = false;
    while (!signal.aborted) {
      try {
        if (missing.length === 0 && Date.now() - startedAt >= sweepGraceMs) await sweepStaleBackups(deps.sql, config.backupStaleHours, log, deps.metrics);
        if (decision.enabled) await scanBackups(scanDeps);
        if (failing) log.info("backup scheduler working again");
        failing = false;
      } catch (err) {
        // One line when it starts failing (usually a database outage, which readiness reports too).
        if (!failing) log.warn("backup scan or sweep failed; retrying every interval", { error: errorMessage(err) });
        failing = true;
      }
      await sleep(config.backupScanIntervalSeconds * 1000, signal).catch(() => {});
    }
    // Deletes of confirmed commands are batched by the announcer: write them before the pool closes.
    await deps.announcer.flush();
  })();
  return scheduler;
}

/** Runs `ask` until the database answers it (backoff, one log line); undefined if the signal aborts first. */
async function untilAnswered<T>(ask: () => Promise<T>, log: Logger, signal: AbortSignal): Promise<T | undefined> {
  for (let attempt = 1; !signal.aborted; attempt++) {
    try {
      return await ask();
    } catch (err) {
      if (attempt === 1) log.warn("backup scheduler waits for the database", { error: errorMessage(err) });
      await sleep(backoff(attempt, 500, 10_000), signal).catch(() => {});
    }
  }
  return undefined;
}

export async function sweepStaleBackups(sql: Sql, hours: number, log: Logger, metrics: Metrics): Promise<number[]> {
  const failed = await failStaleBackups(sql, hours, { pending: staleBackupError(hours, "pending"), running: staleBackupError(hours, "running") });
  metrics.inc("manman_backups_failed_stale_total", "backups failed by the stale sweep (no status within BACKUP_STALE_HOURS)", {}, failed.length);
  if (failed.length > 0) log.warn("backups without a status from their host marked failed", { count: failed.length, stale_hours: hours, backup_ids: failed.slice(0, 50) });
  return failed;
}

/**
 * One scan: under the scan lock, the due pairs become backups rows with
 * their commands in the outbox (one statement per INSERT_CHUNK); after the
 * lock is released the commands are published. Returns the committed
 * commands, or null when another replica was scanning.
 */
export async function scanBackups(d: ScanDeps): Promise<OutboxEvent[] | null> {
  const scan = await withScanLock({ url: d.url, timeoutMs: d.statementTimeoutMs }, async (db) => {
    const targets = await listDueTargets(db);
    const events: OutboxEvent[] = [];
    for (let i = 0; i < targets.length; i += INSERT_CHUNK) {
      const chunk = targets.slice(i, i + INSERT_CHUNK);
      const ids = await reserveBackupIds(db, chunk.length);
      // Signed now, committed milliseconds later: the URL's hour starts with the row.
      const now = new Date();
      const rows = await Promise.all(chunk.map((t, j) => newBackup(d, t, ids[j]!, now)));
      events.push(...(await insertBackupsWithCommands(db, rows, INTERNAL_EXCHANGE, BACKUP_COMMAND_PROPERTIES)));
    }
    return events;
  });
  d.metrics.inc("manman_backup_scans_total", "backup scans by result (busy: another replica was scanning)", { result: scan.locked ? "scanned" : "busy" });
  if (!scan.locked) return null;
  const events = scan.value;
  if (events.length === 0) return events;
  d.metrics.inc("manman_backups_scheduled_total", "backups created by the scheduler, each with its command in the outbox", {}, events.length);
  d.logger.info("backups scheduled", {
    count: events.length,
    backup_ids: events.slice(0, 50).map((e) => e.payload.backup_id),
    backup_config_ids: [...new Set(events.map((e) => (e.payload.s3_key as string).split("/")[2]))].slice(0, 50).map(Number),
  });
  // Committed with their rows: if this publish fails, the outbox relay sends them.
  await d.publish(events).catch((err) =>
    d.logger.warn("backup commands not confirmed by the broker; the outbox relay will send them", { error: errorMessage(err), count: events.length }),
  );
  return events;
}

async function newBackup(d: ScanDeps, t: BackupTarget, backupId: number, now: Date): Promise<NewBackup> {
  const s3Key = backupKey(t.sgcId, t.backupConfigId, backupId);
  const pre = renderPreActions(t.actions);
  for (const s of pre.skipped) {
    d.metrics.inc("manman_backup_pre_actions_skipped_total", "pre-backup action templates left out because they can't be rendered");
    const once = d.skippedActions?.take(s.actionId) ?? { allowed: true, suppressed: 0 };
    if (once.allowed) d.logger.warn("pre-backup action left out: its template can't be rendered", { action_id: s.actionId, backup_config_id: t.backupConfigId, error: s.error, held_back: once.suppressed });
  }
  const presignedUrl = await d.presigner.presignPut(s3Key, BACKUP_CONTENT_TYPE, BACKUP_COMMAND_TTL_MS / 1000, now);
  return {
    backupId, sessionId: t.sessionId, sgcId: t.sgcId, backupConfigId: t.backupConfigId, volumeId: t.volumeId,
    routingKey: backupCommandRoutingKey(t.serverId),
    body: renderBackupCommand({ backupId, target: t, s3Key, presignedUrl, preActionCommands: pre.commands, createdAt: now }),
  };
}
