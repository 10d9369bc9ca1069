/**
 * Marks silent hosts offline and stuck sessions lost (CONTRACT §4), by
 * running both sweeps every STALE_CHECK_INTERVAL_SECONDS. The deployed
 * service checked once a minute; checking every second detects a silent host
 * within threshold + 1 s. Each sweep is one atomic statement that also writes
 * the outbox, so replicas sweeping together announce each change once.
 *
 * After a start, each sweep first waits one threshold: while this process was
 * down, keepalives and heartbeats queued up unapplied, and a sweep at once
 * would mark a session that is downloading addons lost (final: its later
 * `running` is then ignored) or flap a live host offline. One threshold on,
 * every live host and session has spoken to this process again.
 */
import type { Sql } from "../db/pool.ts";
import { sweepStaleHosts, sweepStaleSessions } from "../db/stale.ts";
import type { Announcer } from "./announcer.ts";
import type { LogTailOf } from "../events/store.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import { sleep } from "../util/time.ts";
import { errorMessage } from "../util/errors.ts";

export interface StaleOptions {
  hostThresholdSeconds: number;
  sessionThresholdSeconds: number;
  intervalSeconds: number;
}

export interface StaleDeps {
  sql: Sql;
  /** The last log lines a lost event carries (none when omitted). */
  logTail?: LogTailOf;
  announcer: Announcer;
  logger: Logger;
  metrics: Metrics;
}

/** Which sweeps may run `elapsedMs` after the start (see the top of this file). Pure. */
export function sweepsDue(options: StaleOptions, elapsedMs: number): { hosts: boolean; sessions: boolean } {
  return { hosts: elapsedMs >= options.hostThresholdSeconds * 1000, sessions: elapsedMs >= options.sessionThresholdSeconds * 1000 };
}

/** One pass of the due sweeps; returns how many hosts and sessions it changed. */
export async function sweepOnce(options: StaleOptions, deps: StaleDeps, due = { hosts: true, sessions: true }): Promise<{ hosts: number; sessions: number }> {
  const hosts = due.hosts ? await sweepStaleHosts(deps.sql, options.hostThresholdSeconds) : [];
  for (const e of hosts) deps.logger.info("host went silent; marked offline", { server_id: e.payload.server_id });
  const sessions = due.sessions ? await sweepStaleSessions(deps.sql, options.sessionThresholdSeconds, deps.logTail) : [];
  for (const e of sessions) deps.logger.info("session stuck; marked lost", { session_id: e.payload.session_id });
  deps.metrics.inc("manman_stale_hosts_total", "hosts marked offline for silence", {}, hosts.length);
  deps.metrics.inc("manman_stale_sessions_total", "sessions marked lost for being stuck", {}, sessions.length);
  // Committed with their outbox rows: if this publish fails, the relay does it.
  await deps.announcer.publish([...hosts, ...sessions]).catch((err) =>
    deps.logger.warn("could not announce stale changes; the outbox relay will", { error: errorMessage(err) }),
  );
  return { hosts: hosts.length, sessions: sessions.length };
}

export function startStaleSweeps(options: StaleOptions, deps: StaleDeps, signal: AbortSignal): { stopped: Promise<void> } {
  const startedAt = Date.now();
  const stopped = (async () => {
    let failing = false;
    while (!signal.aborted) {
      try {
        await sweepOnce(options, deps, sweepsDue(options, Date.now() - startedAt));
        if (failing) deps.logger.info("stale sweeps working again");
        failing = false;
      } catch (err) {
        // One line when sweeps start failing (usually a database outage,
        // which the consumer also reports), not one per second.
        if (!failing) deps.logger.warn("stale sweep failed; retrying every interval", { error: errorMessage(err) });
        failing = true;
      }
      await sleep(options.intervalSeconds * 1000, signal).catch(() => {});
    }
  })();
  return { stopped };
}
