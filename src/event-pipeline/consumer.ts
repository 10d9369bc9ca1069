/**
 * The event consumer, put together: an exclusive consumer on the event
 * queue (amqp/consumer-channel.ts), held or stood by for by the role
 * (consumer-role.ts), every delivery handed to the work (work.ts), settled
 * through bulk acks (amqp/acker.ts) and the bounded dead-letter queue
 * (amqp/dead-letter.ts).
 *
 * The role has a broker connection of its own: the broker frees the queue
 * when that connection dies, so it carries a heartbeat fitted to
 * FAILOVER_SECONDS (role-timings.ts), while log lines and publishes stay on
 * the main session, whose longer heartbeat a stall of a second or two does
 * not break (that would cost its log queue).
 *
 * On the signal it stops working on new deliveries but keeps the role:
 * a basic.cancel would free the queue for a standby while messages are
 * still being applied here, and the standby could apply a session's next
 * message first. It drains what is in flight within
 * SHUTDOWN_TIMEOUT_SECONDS, sends the last acks, then closes the channel:
 * what arrived meanwhile goes back to the queue, in order, for the next
 * holder.
 */
import { hostname } from "node:os";
import { Acker } from "../amqp/acker.ts";
import { connectBroker, type BrokerSession } from "../amqp/connection.ts";
import { ConsumerChannel } from "../amqp/consumer-channel.ts";
import { DeadLetterQueue } from "../amqp/dead-letter.ts";
import type { Publisher } from "../amqp/publisher.ts";
import { brokerTlsOptions, type BrokerTlsSettings } from "../amqp/tls.ts";
import { deadLetterQueueName, declareEventTopology, queueConsumers, queueDepth } from "../amqp/topology.ts";
import type { DatabaseWatch } from "../db/watch.ts";
import type { EventStore } from "../events/store.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import { aborted } from "../util/abort.ts";
import { settlesWithin } from "../util/timeout.ts";
import type { Announcer } from "./announcer.ts";
import { ConsumerRole } from "./consumer-role.ts";
import { EventCounters } from "./counters.ts";
import { InFlight } from "./in-flight.ts";
import { Settler } from "./settle.ts";
import { roleTimings } from "./role-timings.ts";
import { EventWork } from "./work.ts";

export interface EventConsumerOptions extends BrokerTlsSettings {
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
  /** For the role's own connection (its TLS settings come with these options). */
  rabbitmqUrl: string;
  failoverSeconds: number;
  /** This replica's name in /status and the role's log lines (the host name unless set). */
  podName?: string;
}

export interface EventConsumerDeps {
  /** The main session: the dead-letter queue's depth. */
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
  /** Active or standby, since when; readiness. */
  role: ConsumerRole;
  /** Settles once draining after the signal is done (or timed out). */
  stopped: Promise<void>;
}

export async function startEventConsumer(options: EventConsumerOptions, deps: EventConsumerDeps): Promise<EventConsumer> {
  const { session, logger, metrics, signal } = deps;
  // Acks go out as one `multiple` ack per contiguous run of settled
  // deliveries: one frame per message halves what the broker side can take.
  const acker = new Acker({ batch: Math.ceil(options.prefetch / 10) });
  const dlq = deadLetterQueueName(options.queueName);
  const deadLetters = new DeadLetterQueue(
    { queueName: dlq, maxAgeHours: options.dlqMaxAgeHours, maxMessages: options.dlqMaxMessages },
    { publisher: deps.publisher, depth: () => queueDepth(session, dlq), logger, metrics },
  );
  const counters = new EventCounters(metrics);
  const inFlight = new InFlight();
  const settler = new Settler({ acker, deadLetters, announcer: deps.announcer, counters, logger });
  const work = new EventWork(options, { store: deps.store, database: deps.database, settler, inFlight, counters, logger });
  const timings = roleTimings(options.failoverSeconds);
  const replica = options.podName ?? hostname();
  const roleSession = await connectBroker({
    url: options.rabbitmqUrl, tls: brokerTlsOptions(options.rabbitmqUrl, options), logger, signal,
    name: `manman-processor events ${replica}`,
    label: "event consumer's broker",
    heartbeatSeconds: timings.heartbeatSeconds,
    heartbeatTimeoutMs: timings.heartbeatTimeoutMs,
  });
  // After the signal a delivery is left unacked: the channel's close at the
  // end of the drain requeues it for the next holder.
  let working = true;
  const channel = new ConsumerChannel(roleSession, { ...options, exclusive: true }, (msg) => void (working && work.receive(msg)));
  const role = new ConsumerRole(
    { queueName: options.queueName, replica, timings },
    {
      session: roleSession, channel, database: deps.database, logger, metrics, signal,
      declare: () => declareEventTopology(roleSession, options, logger),
      consumers: () => queueConsumers(roleSession, options.queueName),
      busy: stuck(() => inFlight.count, () => metrics.total("manman_event_messages_total")),
    },
  );
  await role.start();
  const roleLoop = role.run();
  logger.info("event consumer started", { queue: options.queueName, prefetch: options.prefetch, replica, failover_check_ms: timings.checkMs });

  const stopped = (async () => {
    await aborted(signal);
    working = false;
    role.stop();
    await roleLoop;
    if (inFlight.count > 0) logger.info("draining in-flight event messages", { in_flight: inFlight.count });
    const drained = await settlesWithin(inFlight.drained(), options.shutdownTimeoutSeconds * 1000);
    acker.flushAll();
    // Only now may a standby take the queue: nothing of ours is still being applied.
    await channel.close();
    await deps.announcer.flush();
    await roleSession.stop().catch(() => {});
    if (!drained) logger.warn("drain deadline passed; unfinished messages will be redelivered", { in_flight: inFlight.running });
  })();

  return { attached: () => channel.attached, inFlight: () => inFlight.count, role, stopped };
}

/**
 * True when messages are in flight and none settled since the last call:
 * only then is the database worth a probe (each opens a connection), and
 * only then does its outage hold anything up.
 */
function stuck(inFlight: () => number, settled: () => number): () => boolean {
  let last = -1;
  return () => {
    const now = settled();
    const result = inFlight() > 0 && now === last;
    last = now;
    return result;
  };
}
