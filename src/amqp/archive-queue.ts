/**
 * The log archive's broker side (issue 10): one durable queue per vhost,
 * `processor-log-archive`, bound to `manman` with `logs.session.#` and shared
 * by every replica, consumed with manual acks. Unlike the live queue
 * (log-queue.ts: one exclusive, bounded, unacked queue per process, where a
 * lost line only means a viewer misses it), a line here leaves the broker
 * only when the archive has stored it: the queue is durable, classic and has
 * no TTL or length limit, so nothing ages out while the archive is down.
 * Replicas split its lines between them (each archives what it got; parts
 * keep their objects apart).
 *
 * The consumer runs on a channel of its own (consumer-channel.ts) with a
 * prefetch of LOG_ARCHIVE_MAX_PENDING_LINES, so the broker never has more
 * unacked lines out to this process than the archive may hold; the watchdog
 * (consumer-watchdog.ts) re-attaches it after a reconnect or a channel the
 * broker closed.
 */
import type { AMQPMessage } from "@cloudamqp/amqp-client";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import { errorMessage } from "../util/errors.ts";
import type { BrokerSession } from "./connection.ts";
import { ConsumerChannel } from "./consumer-channel.ts";
import { watchAttachment } from "./consumer-watchdog.ts";
import { withOpsChannel } from "./private-api.ts";

export const ARCHIVE_QUEUE = "processor-log-archive";
export const ARCHIVE_EXCHANGE = "manman";
// `#`, not the live queue's `*`: a session id is one word today, and `#`
// also archives anything a future publisher puts below it instead of
// silently leaving it out of the archive.
export const ARCHIVE_BINDING = "logs.session.#";
// basic.qos's prefetch-count is an unsigned 16-bit field (AMQP 0-9-1).
export const MAX_PREFETCH = 65_535;

export interface ArchiveQueueOptions {
  session: BrokerSession;
  /** LOG_ARCHIVE_MAX_PENDING_LINES (capped at MAX_PREFETCH). */
  prefetch: number;
  /** Every delivery, synchronously; must not throw (a throw would reach the frame parser). */
  onMessage: (msg: AMQPMessage) => void;
  logger: Logger;
  metrics: Metrics;
  signal: AbortSignal;
}

export interface ArchiveQueue {
  /** True while consuming on a live channel (and not stopping). */
  attached(): boolean;
  /** No new deliveries (basic.cancel); the channel stays open so held lines can still be acked. */
  stopConsuming(): Promise<void>;
  /** Settles once the watchdog has ended (after the signal). */
  stopped: Promise<void>;
}

/** Declares the queue as every replica declares it: durable, classic, no arguments, bound to logs.session.#. */
export async function declareArchiveQueue(session: BrokerSession, logger: Logger): Promise<void> {
  await withOpsChannel(session, (ch) => ch.exchangeDeclare(ARCHIVE_EXCHANGE, "topic", { durable: true }));
  try {
    await withOpsChannel(session, (ch) => ch.queueDeclare(ARCHIVE_QUEUE, { durable: true }));
  } catch (err) {
    // PRECONDITION_FAILED: an operator made it with other arguments (a
    // policy-free quorum queue, say). Deleting it would lose the lines it
    // holds, so use it as it is.
    if (!/PRECONDITION_FAILED|inequivalent/i.test(errorMessage(err))) throw err;
    logger.warn("log archive queue exists with other arguments; using it as it is", { queue: ARCHIVE_QUEUE, error: errorMessage(err) });
    await withOpsChannel(session, (ch) => ch.queueDeclare(ARCHIVE_QUEUE, { passive: true }));
  }
  await withOpsChannel(session, (ch) => ch.queueBind(ARCHIVE_QUEUE, ARCHIVE_EXCHANGE, ARCHIVE_BINDING));
}

/** Declares the queue and consumes it until `stopConsuming()`; the watchdog keeps it attached. */
export async function consumeArchiveQueue(options: ArchiveQueueOptions): Promise<ArchiveQueue> {
  const { session, logger, metrics, signal } = options;
  const prefetch = Math.max(1, Math.min(MAX_PREFETCH, options.prefetch));
  const channel = new ConsumerChannel(session, { queueName: ARCHIVE_QUEUE, prefetch }, options.onMessage);
  const declare = () => declareArchiveQueue(session, logger);
  // The first attach may fail (broker just restarted); the watchdog retries.
  try {
    await channel.reattach(declare);
    logger.info("archiving session log lines", { queue: ARCHIVE_QUEUE, binding: ARCHIVE_BINDING, prefetch });
  } catch (err) {
    logger.warn("could not consume the log archive queue yet; retrying", { queue: ARCHIVE_QUEUE, error: errorMessage(err) });
  }
  const stopped = watchAttachment({
    session,
    logger,
    metrics,
    signal,
    attached: () => channel.attached,
    isDraining: () => channel.isStopping,
    reattach: () => channel.reattach(declare),
    label: "log archive consumer",
    reattachedMetric: "manman_log_archive_consumer_reattached_total",
  });
  return {
    attached: () => channel.attached,
    stopConsuming: async () => {
      channel.beginStop();
      await channel.cancel();
    },
    stopped,
  };
}
