/**
 * The event loop: broker in → decode → apply (in order per server/session,
 * concurrently across them) → announce → ack. A message is acked only after
 * its change is committed (with its events in the outbox) and the broker has
 * confirmed the events, or they are left to the outbox relay.
 *
 * Failures, by whose fault they are:
 * - the message's (bad body, unknown session or backup, data error):
 *   dead-lettered at once with the reason in its headers (bounded: see
 *   amqp/dead-letter.ts); a host message for an unknown server is acked and
 *   counted instead (a deleted host keeps heartbeating);
 * - the order's (pending -> running: an early message overtook its
 *   predecessor, from another replica or a requeue): tried again after a
 *   short wait, without holding its session's queue (the predecessor may be
 *   behind it there), for FORWARD_SKIP_RETRY_SECONDS, then dead-lettered;
 * - the database's (outage): held unacked, waiting for it to answer; the
 *   prefetch window then keeps the broker from sending more;
 * - the moment's (a timeout on one row): retried with backoff up to
 *   MAX_RETRIES, holding only that entity's queue, then dead-lettered;
 * - the broker's (connection or channel lost): messages of the dead channel
 *   are dropped unprocessed (the broker redelivers them, in order) and a
 *   watchdog re-attaches the consumer, redeclaring the topology first.
 */
import type { AMQPChannel, AMQPMessage } from "@cloudamqp/amqp-client";
import { Acker } from "../amqp/acker.ts";
import { watchAttachment } from "../amqp/consumer-watchdog.ts";
import type { BrokerSession } from "../amqp/connection.ts";
import { errorMessage } from "../util/errors.ts";
import { aborted } from "../util/abort.ts";
import { settlesWithin } from "../util/timeout.ts";
import type { Publisher } from "../amqp/publisher.ts";
import { deadLetterQueueName, declareEventTopology } from "../amqp/topology.ts";
import { openOwnChannel, withOpsChannel } from "../amqp/private-api.ts";
import { DeadLetterQueue } from "../amqp/dead-letter.ts";
import { isConnectionLoss, isPermanentDatabaseError } from "../db/errors.ts";
import type { DatabaseWatch } from "../db/watch.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import { KeyedQueue } from "../util/keyed-queue.ts";
import { backoff, sleep } from "../util/time.ts";
import { OncePer } from "../util/rate-limit.ts";
import { applyEvent, type Outcome } from "./apply.ts";
import type { EventStore } from "./store.ts";
import type { Announcer } from "./announce.ts";
import { decodeEvent, type EventMessage } from "./messages.ts";

export interface EventConsumerOptions {
  queueName: string;
  queueType: "classic" | "quorum";
  externalExchange: string;
  prefetch: number;
  maxRetries: number;
  maxMessageBytes: number;
  shutdownTimeoutSeconds: number;
  forwardSkipRetrySeconds: number;
  dlqMaxAgeHours: number;
  dlqMaxMessages: number;
  s3Bucket?: string;
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
// Retries of a message's own transient failure: 100 ms doubling, capped at
// 5 s, with jitter; with MAX_RETRIES=5 a message gives up after ~3 s of
// waiting plus its attempts, far below the broker's 30 min consumer_timeout.
const RETRY_BASE_MS = 100;
const RETRY_CAP_MS = 5000;
// A statement whose connection was lost (killed, reset) while the database
// still answers is run again without counting as the message's retry, up to
// this many times; every statement pipelined on a killed connection fails
// at once, and counting those would dead-letter innocent messages.
const CONNECTION_LOSS_RETRIES = 10;
// One "connections lost" line per 10 s at most, not one per statement.
const CONNECTION_LOSS_LOG_EVERY_MS = 10_000;
// An early pending -> running is tried again after 100 ms doubling to 1 s:
// its predecessor usually lands within milliseconds, and a 1 s cap gives
// several tries within the default 5 s window.
const EARLY_RETRY_BASE_MS = 100;
const EARLY_RETRY_CAP_MS = 1000;
// A deleted host heartbeats every 5 s for ever: one line per server per
// 10 min says it is happening without filling the log.
const UNKNOWN_SERVER_LOG_EVERY_MS = 10 * 60_000;

/** How long a message has been waiting for its predecessor, across its tries. */
interface EarlyState {
  since: number;
  tries: number;
}

interface Attachment {
  channel: AMQPChannel;
  tag: string;
}

export async function startEventConsumer(options: EventConsumerOptions, deps: EventConsumerDeps): Promise<EventConsumer> {
  const { session, logger, metrics, signal } = deps;
  const keyed = new KeyedQueue();
  // Acks go out as one `multiple` ack per contiguous run of settled
  // deliveries: one frame per message halves what the broker side can take.
  const acker = new Acker({ batch: Math.ceil(options.prefetch / 10) });
  const dlq = deadLetterQueueName(options.queueName);
  const deadLetters = new DeadLetterQueue(
    { queueName: dlq, maxAgeHours: options.dlqMaxAgeHours, maxMessages: options.dlqMaxMessages },
    {
      publisher: deps.publisher,
      depth: async () => (await withOpsChannel(session, (ch) => ch.queueDeclare(dlq, { passive: true }))).messageCount,
      logger,
      metrics,
    },
  );
  const unknownServers = new OncePer(UNKNOWN_SERVER_LOG_EVERY_MS);
  // Early messages waiting out their delay: unsettled, so still in flight.
  let waitingEarly = 0;
  let draining = false;
  // Keys with a message left unacked for redelivery during shutdown: their
  // later messages must be left too, or they would overtake it.
  const abandonedKeys = new Set<string>();
  let connectionLossLoggedAt = 0;

  const deadLetter = async (msg: AMQPMessage, reason: string, attempts: number, fields: Record<string, unknown> = {}) => {
    try {
      // Sent or dropped (the queue is full: counted and logged there), the
      // message is done with.
      await deadLetters.send(msg, reason, attempts, fields);
      acker.ack(msg);
    } catch (err) {
      // The queue's own dead-letter arguments still route a rejected message
      // to the DLQ, only without our reason headers (the log line has it).
      // If the channel is gone too, the broker redelivers it and it comes
      // here again.
      logger.debug("publishing to the dead-letter queue failed; rejecting instead", { error: errorMessage(err) });
      acker.reject(msg);
    }
  };

  const settle = async (msg: AMQPMessage, event: EventMessage, outcome: Outcome, attempts: number) => {
    const fields = { routing_key: msg.routingKey, ...idsOf(event), detail: outcome.detail };
    metrics.inc(COUNTER, COUNTER_HELP, { kind: event.kind, outcome: outcome.kind });
    if (outcome.kind === "rejected") return deadLetter(msg, outcome.detail, attempts, idsOf(event));
    if (outcome.events.length > 0) {
      // Committed, with the events in the outbox. If the broker does not
      // confirm them, the Announcer has logged it and the relay publishes
      // them once it can: the message is done either way.
      await deps.announcer.publish(outcome.events).catch(() => {});
    }
    if (outcome.kind === "unknown_server") {
      const serverId = (event.message as { server_id: number }).server_id;
      const { allowed, suppressed } = unknownServers.take(serverId);
      if (allowed) logger.warn("message for a server with no row (a deleted host?); acked and counted, said once per 10 min", { ...fields, held_back: suppressed });
    } else if (outcome.kind === "stale") logger.info("ignored stale redelivery", fields);
    else if (event.kind === "heartbeat" && outcome.kind === "unchanged") logger.debug("heartbeat", fields);
    else logger.info(outcome.kind === "applied" ? "applied" : "accepted unchanged", fields);
    // An ack on a channel that died is dropped: the broker redelivers, and
    // the redelivery changes nothing.
    acker.ack(msg);
  };

  /** Leaves a message unacked for the broker to redeliver; false if it must be worked on. */
  const leaveForRedelivery = (msg: AMQPMessage, event: EventMessage): boolean => {
    if (msg.channel.closed) {
      // Its channel died: the broker has requeued it (and everything after
      // it), so applying it now would only race its own redelivery.
      metrics.inc("manman_event_messages_left_for_redelivery_total", "event messages left to the broker to redeliver (lost channel, shutdown)");
      return true;
    }
    if (abandonedKeys.has(event.key)) {
      metrics.inc("manman_event_messages_left_for_redelivery_total", "event messages left to the broker to redeliver (lost channel, shutdown)");
      return true;
    }
    return false;
  };

  /** Gives the session's queue back and tries `msg` again after a short wait; false once its window has passed. */
  const retryEarly = (msg: AMQPMessage, event: EventMessage, early: EarlyState): boolean => {
    const windowMs = options.forwardSkipRetrySeconds * 1000;
    if (Date.now() - early.since >= windowMs) return false;
    early.tries++;
    metrics.inc("manman_event_early_retries_total", "tries again of a pending -> running message waiting for its predecessor");
    waitingEarly++;
    setTimeout(() => {
      waitingEarly--;
      void keyed.run(event.key, () => work(msg, event, early)).catch((err) => unexpected(msg, err));
    }, Math.min(backoff(early.tries, EARLY_RETRY_BASE_MS, EARLY_RETRY_CAP_MS), windowMs));
    return true;
  };

  const unexpected = (msg: AMQPMessage, err: unknown) => {
    logger.error("unexpected failure handling an event message; requeued", { routing_key: msg.routingKey, error: errorMessage(err) });
    // Unsettled on a live channel it would sit until the channel closes.
    acker.requeue(msg);
  };

  const work = async (msg: AMQPMessage, event: EventMessage, early?: EarlyState) => {
    let attempts = 0;
    let connectionLosses = 0;
    for (;;) {
      if (leaveForRedelivery(msg, event)) return;
      attempts++;
      let outcome: Outcome;
      try {
        outcome = await applyEvent(deps.store, event, { s3Bucket: options.s3Bucket });
      } catch (err) {
        if (isPermanentDatabaseError(err)) return deadLetter(msg, `database refused the values: ${errorMessage(err)}`, attempts, idsOf(event));
        let answers: boolean;
        try {
          answers = await deps.database.answersOrWait(err);
        } catch {
          // Shutting down mid-outage: leave it (and its key's later
          // messages) unacked for redelivery.
          abandonedKeys.add(event.key);
          return;
        }
        if (!answers) {
          attempts--; // the outage's fault, not the message's
          continue;
        }
        if (isConnectionLoss(err) && connectionLosses < CONNECTION_LOSS_RETRIES) {
          connectionLosses++;
          attempts--; // the connection's fault, not the message's
          metrics.inc("manman_database_connection_losses_total", "statements run again because their database connection was lost");
          if (Date.now() - connectionLossLoggedAt >= CONNECTION_LOSS_LOG_EVERY_MS) {
            connectionLossLoggedAt = Date.now();
            logger.warn("database connection lost under a statement; running it again", { error: errorMessage(err) });
          }
          await sleep(backoff(connectionLosses, 20, 1000));
          continue;
        }
        if (attempts > options.maxRetries) return deadLetter(msg, `failed ${attempts} times: ${errorMessage(err)}`, attempts, idsOf(event));
        metrics.inc("manman_event_retries_total", "retries of event messages after a transient failure");
        const delay = backoff(attempts, RETRY_BASE_MS, RETRY_CAP_MS);
        logger.warn("transient failure; retrying", { routing_key: msg.routingKey, ...idsOf(event), attempt: attempts, retry_in_ms: delay, error: errorMessage(err) });
        // During shutdown the retry still runs (the drain deadline bounds it).
        await sleep(delay);
        continue;
      }
      if (outcome.kind === "early") {
        const state = early ?? { since: Date.now(), tries: 0 };
        if (retryEarly(msg, event, state)) return;
        const waited = ((Date.now() - state.since) / 1000).toFixed(1);
        outcome = { ...outcome, kind: "rejected", detail: `${outcome.detail}: its predecessor did not arrive within ${waited} s (${state.tries} tries)` };
      }
      return settle(msg, event, outcome, attempts);
    }
  };

  const onMessage = (msg: AMQPMessage) => {
    if (msg.bodySize > options.maxMessageBytes) {
      metrics.inc(COUNTER, COUNTER_HELP, { kind: "oversize", outcome: "rejected" });
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
    void keyed.run(decoded.event.key, () => work(msg, decoded.event)).catch((err) => unexpected(msg, err));
  };

  // Our own channel rather than the session's subscription recovery: that
  // re-consumes before the topology is redeclared (and fails for a deleted
  // queue), and never notices a channel the broker closed on a live
  // connection (consumer_timeout, queue deleted). The watchdog covers all.
  let current: Attachment | null = null;
  const attach = async (): Promise<void> => {
    const channel = await openOwnChannel(session);
    try {
      await channel.basicQos(options.prefetch);
      const consumer = await channel.basicConsume(options.queueName, { noAck: false }, onMessage);
      current = { channel, tag: consumer.tag };
    } catch (err) {
      await channel.close().catch(() => {});
      throw err;
    }
  };
  const attached = (): boolean => {
    const a = current;
    return !draining && !session.closed && a !== null && !a.channel.closed && a.channel.consumers.has(a.tag);
  };

  await attach();
  logger.info("consuming events", { queue: options.queueName, prefetch: options.prefetch });

  const watchdog = watchAttachment({ session, logger, metrics, signal, attached, isDraining: () => draining, reattach: async () => {
    const old = current;
    current = null;
    if (old && !old.channel.closed) await old.channel.close().catch(() => {});
    await declareEventTopology(session, options, logger);
    await attach();
  } });

  const stopped = (async () => {
    await aborted(signal);
    draining = true;
    await watchdog;
    // basic.cancel only: the channel stays open so in-flight messages can
    // still be acked (closing it would requeue them).
    const last = current as Attachment | null;
    if (last && !last.channel.closed) await last.channel.basicCancel(last.tag).catch(() => {});
    const pending = keyed.pending + waitingEarly;
    if (pending > 0) logger.info("draining in-flight event messages", { in_flight: pending });
    const drained = await settlesWithin(drainedAll(), options.shutdownTimeoutSeconds * 1000);
    acker.flushAll();
    await deps.announcer.flush();
    if (!drained) logger.warn("drain deadline passed; unfinished messages will be redelivered", { in_flight: keyed.pending });
  })();

  /** Idle, including early messages still waiting out their delay (each ends within FORWARD_SKIP_RETRY_SECONDS). */
  async function drainedAll(): Promise<true> {
    for (;;) {
      await keyed.idle();
      if (waitingEarly === 0 && keyed.pending === 0) return true;
      await sleep(EARLY_RETRY_BASE_MS);
    }
  }

  return { attached, inFlight: () => keyed.pending + waitingEarly, stopped };
}

function idsOf(event: EventMessage): Record<string, number> {
  switch (event.kind) {
    case "session_status":
      return { session_id: event.message.session_id };
    case "backup_status":
      return { backup_id: event.message.backup_id };
    default:
      return { server_id: event.message.server_id };
  }
}

