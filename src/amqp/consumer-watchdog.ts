/**
 * Keeps a consumer attached. amqp-client's session re-consumes after a
 * reconnect but not after the broker closes a consumer's channel on a live
 * connection (consumer_timeout, queue deleted), and not when the queue was
 * lost with the broker; this loop notices all of them by looking.
 */
import type { BrokerSession } from "./connection.ts";
import { errorMessage } from "../util/errors.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import { backoff, sleep } from "../util/time.ts";

// 1 s: how soon a lost consumer is noticed once the connection is back; the
// check is a few property reads.
const WATCHDOG_MS = 1000;

export interface WatchDeps {
  session: BrokerSession;
  logger: Logger;
  metrics: Metrics;
  signal: AbortSignal;
  attached(): boolean;
  isDraining(): boolean;
  reattach(): Promise<void>;
  /** Who is watched, for the log lines ("event consumer" unless set). */
  label?: string;
  /** The counter of re-attachments (manman_event_consumer_reattached_total unless set). */
  reattachedMetric?: string;
}

/**
 * Re-attaches the consumer whenever the connection is up but the consumer
 * is not, with backoff between failed attempts and one log line per change
 * of state. Settles when the signal aborts.
 */
export async function watchAttachment(w: WatchDeps): Promise<void> {
  const label = w.label ?? "event consumer";
  const metric = w.reattachedMetric ?? "manman_event_consumer_reattached_total";
  let detachedSince = 0;
  let failures = 0;
  let nextTry = 0;
  while (!w.signal.aborted) {
    await sleep(WATCHDOG_MS, w.signal).catch(() => {});
    if (w.signal.aborted || w.isDraining()) break;
    if (w.attached()) {
      detachedSince = 0;
      continue;
    }
    if (detachedSince === 0) {
      detachedSince = Date.now();
      failures = 0;
      nextTry = 0;
      // A lost connection has its own log line; a lost channel on a live
      // connection (consumer_timeout, queue deleted) gets this one.
      if (!w.session.closed) w.logger.warn(`${label} lost its channel; re-attaching`);
    }
    if (w.session.closed || Date.now() < nextTry) continue;
    try {
      await w.reattach();
      w.metrics.inc(metric, `times the ${label} was attached again after losing its channel or connection`);
      w.logger.info(`${label} attached again`, { detached_ms: Date.now() - detachedSince });
      detachedSince = 0;
    } catch (err) {
      failures++;
      nextTry = Date.now() + backoff(failures, 1000, 30_000);
      if (failures === 1) w.logger.warn(`re-attaching the ${label} failed; retrying`, { error: errorMessage(err) });
    }
  }
}
