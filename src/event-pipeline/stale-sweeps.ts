/**
 * Marks silent hosts offline and stuck sessions lost (CONTRACT §4), by
 * running both sweeps every STALE_CHECK_INTERVAL_SECONDS. The deployed
 * service checked once a minute; checking every second detects a silent host
 * within threshold + 1 s. Each sweep is one atomic statement that also writes
 * the outbox, so replicas sweeping together announce each change once.
 */
import type { Sql } from "../db/pool.ts";
import { sweepStaleHosts, sweepStaleSessions } from "../db/stale.ts";
import type { Announcer } from "./announcer.ts";
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
  announcer: Announcer;
  logger: Logger;
  metrics: Metrics;
}

/** One pass of both sweeps; returns how many hosts and sessions it changed. */
export async function sweepOnce(options: StaleOptions, deps: StaleDeps): Promise<{ hosts: number; sessions: number }> {
  const hosts = await sweepStaleHosts(deps.sql, options.hostThresholdSeconds);
  for (const e of hosts) deps.logger.info("host went silent; marked offline", { server_id: e.payload.server_id });
  const sessions = await sweepStaleSessions(deps.sql, options.sessionThresholdSeconds);
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
  const stopped = (async () => {
    let failing = false;
    while (!signal.aborted) {
      try {
        await sweepOnce(options, deps);
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
