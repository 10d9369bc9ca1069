/**
 * The event loop: broker in → decode → apply (in order per server/session,
 * concurrently across them) → announce → ack. A message is acked only after
 * its change is committed and its events are confirmed by the broker.
 *
 * Failures, by whose fault they are:
 * - the message's (bad body, unknown id, forward skip, data error):
 *   dead-lettered at once with the reason in its headers;
 * - the database's (outage): held unacked, waiting for it to answer; the
 *   prefetch window then keeps the broker from sending more;
 * - the moment's (a timeout on one row): retried with backoff up to
 *   MAX_RETRIES, holding only that entity's queue, then dead-lettered.
 */
import type { AMQPMessage, AMQPSubscription } from "@cloudamqp/amqp-client";
import type { BrokerSession } from "../amqp/connection.ts";
import { errorMessage } from "../amqp/connection.ts";
import type { Publisher } from "../amqp/publisher.ts";
import { deadLetterQueueName } from "../amqp/topology.ts";
import { isPermanentDatabaseError } from "../db/errors.ts";
import type { DatabaseWatch } from "../db/watch.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import { KeyedQueue } from "../util/keyed-queue.ts";
import { backoff, sleep } from "../util/time.ts";
import { applyEvent, type EventStore, type Outcome } from "./apply.ts";
import type { Announcer } from "./announce.ts";
import { decodeEvent, type EventMessage } from "./messages.ts";

export interface EventConsumerOptions {
  queueName: string;
  prefetch: number;
  maxRetries: number;
  maxMessageBytes: number;
  shutdownTimeoutSeconds: number;
}

export interface EventConsumerDeps {
  session: BrokerSession;
  store: EventStore;
  announcer: Announcer;
  publisher: Publisher;
  database: DatabaseWatch;
  logger: Logger;
  metrics: Metrics;
  signal: AbortSignal;
}

export interface EventConsumer {
  /** True while a consumer is registered on a live channel. */
  attached(): boolean;
  /** Messages received and not yet settled. */
  inFlight(): number;
  /** Settles once draining after the signal is done (or timed out). */
  stopped: Promise<void>;
}

const COUNTER = "manman_event_messages_total";
const COUNTER_HELP = "event messages by kind and outcome";

export async function startEventConsumer(options: EventConsumerOptions, deps: EventConsumerDeps): Promise<EventConsumer> {
  const { session, logger, metrics, signal } = deps;
  const keyed = new KeyedQueue();
  const dlq = deadLetterQueueName(options.queueName);
  let draining = false;

  const deadLetter = async (msg: AMQPMessage, reason: string, attempts: number, fields: Record<string, unknown> = {}) => {
    logger.warn("dead-lettered event message", { routing_key: msg.routingKey, reason, attempts, ...fields });
    metrics.inc("manman_event_messages_dead_lettered_total", "event messages sent to the dead-letter queue", { routing_key_prefix: prefixOf(msg.routingKey) });
    const headers = {
      ...(msg.properties.headers ?? {}),
      "x-death-reason": reason,
      "x-attempts": attempts,
      "x-original-exchange": msg.exchange,
      "x-original-routing-key": msg.routingKey,
    };
    try {
      await deps.publisher.publish("", dlq, msg.body ?? new Uint8Array(), { ...msg.properties, headers });
      await msg.ack();
    } catch (err) {
      // The queue's own dead-letter arguments still route a rejected message
      // to the DLQ, only without our reason headers (the log line has it).
      logger.debug("publishing to the dead-letter queue failed; rejecting instead", { error: errorMessage(err) });
      await msg.reject(false).catch(() => {});
    }
  };

  const settle = async (msg: AMQPMessage, event: EventMessage, outcome: Outcome, attempts: number) => {
    const fields = { routing_key: msg.routingKey, ...idsOf(event), detail: outcome.detail };
    metrics.inc(COUNTER, COUNTER_HELP, { kind: event.kind, outcome: outcome.kind });
    if (outcome.kind === "rejected") return deadLetter(msg, outcome.detail, attempts, idsOf(event));
    if (outcome.events.length > 0) {
      try {
        await deps.announcer.publish(outcome.events);
      } catch (err) {
        // Committed, and the events wait in the outbox for the relay. The
        // redelivery finds the change already made and is simply acked.
        logger.warn("could not announce a committed change; the outbox relay will", { ...fields, error: errorMessage(err) });
        await msg.nack(true).catch(() => {});
        return;
      }
    }
    if (outcome.kind === "stale") logger.info("ignored stale redelivery", fields);
    else if (event.kind === "heartbeat" && outcome.kind === "unchanged") logger.debug("heartbeat", fields);
    else logger.info(outcome.kind === "applied" ? "applied" : "accepted unchanged", fields);
    // A failed ack means the channel is gone: the broker redelivers, and the
    // redelivery changes nothing.
    await msg.ack().catch(() => {});
  };

  const process = async (msg: AMQPMessage, event: EventMessage) => {
    let attempts = 0;
    for (;;) {
      attempts++;
      let outcome: Outcome;
      try {
        outcome = await applyEvent(deps.store, event);
      } catch (err) {
        if (isPermanentDatabaseError(err)) return deadLetter(msg, `database refused the values: ${errorMessage(err)}`, attempts, idsOf(event));
        let answers: boolean;
        try {
          answers = await deps.database.answersOrWait(err);
        } catch {
          return; // shutting down mid-outage: leave it unacked for redelivery
        }
        if (!answers) {
          attempts--; // the outage's fault, not the message's
          continue;
        }
        if (attempts > options.maxRetries) return deadLetter(msg, `failed ${attempts} times: ${errorMessage(err)}`, attempts, idsOf(event));
        metrics.inc("manman_event_retries_total", "retries of event messages after a transient failure");
        const delay = backoff(attempts, 100, 5000);
        logger.warn("transient failure; retrying", { routing_key: msg.routingKey, ...idsOf(event), attempt: attempts, retry_in_ms: delay, error: errorMessage(err) });
        // During shutdown the retry still runs (the drain deadline bounds it).
        await sleep(delay);
        continue;
      }
      return settle(msg, event, outcome, attempts);
    }
  };

  const onMessage = (msg: AMQPMessage) => {
    if (msg.bodySize > options.maxMessageBytes) {
      void keyed.run(`oversize:${msg.deliveryTag}`, () =>
        deadLetter(msg, `body of ${msg.bodySize} bytes exceeds MAX_MESSAGE_BYTES (${options.maxMessageBytes})`, 1),
      );
      return;
    }
    const decoded = decodeEvent(msg.routingKey, msg.body);
    if (!decoded.ok) {
      metrics.inc(COUNTER, COUNTER_HELP, { kind: "undecodable", outcome: "rejected" });
      void keyed.run(`bad:${msg.deliveryTag}`, () => deadLetter(msg, decoded.reason, 1));
      return;
    }
    void keyed.run(decoded.event.key, () => process(msg, decoded.event)).catch((err) =>
      logger.error("unexpected failure handling an event message; it will be redelivered", { routing_key: msg.routingKey, error: errorMessage(err) }),
    );
  };

  const queue = await session.queue(options.queueName, { passive: true });
  const subscription: AMQPSubscription = await queue.subscribe({ prefetch: options.prefetch, manualAck: true }, onMessage);
  logger.info("consuming events", { queue: options.queueName, prefetch: options.prefetch });

  const stopped = (async () => {
    await new Promise<void>((resolve) => (signal.aborted ? resolve() : signal.addEventListener("abort", () => resolve(), { once: true })));
    draining = true;
    // basic.cancel only: the channel stays open so in-flight messages can
    // still be acked (cancelling the subscription would close it).
    await subscription.channel.basicCancel(subscription.consumerTag).catch(() => {});
    const pending = keyed.pending;
    if (pending > 0) logger.info("draining in-flight event messages", { in_flight: pending });
    const drained = await Promise.race([
      keyed.idle().then(() => true),
      sleep(options.shutdownTimeoutSeconds * 1000).then(() => false),
    ]);
    await deps.announcer.flush();
    if (!drained) logger.warn("drain deadline passed; unfinished messages will be redelivered", { in_flight: keyed.pending });
  })();

  return {
    attached: () => !draining && !session.closed && !subscription.channel.closed,
    inFlight: () => keyed.pending,
    stopped,
  };
}

function idsOf(event: EventMessage): Record<string, number> {
  const m = event.message as { server_id?: number; session_id?: number };
  return m.session_id !== undefined ? { session_id: m.session_id } : { server_id: m.server_id! };
}

function prefixOf(routingKey: string): string {
  return routingKey.split(".").slice(0, 2).join(".");
}
