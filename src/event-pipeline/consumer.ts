/**
 * The event consumer, put together: a channel of its own on the event queue
 * (amqp/consumer-channel.ts) kept attached by the watchdog, every delivery
 * handed to the work (work.ts), settled through bulk acks (amqp/acker.ts)
 * and the bounded dead-letter queue (amqp/dead-letter.ts). On the signal it
 * stops consuming, drains what is in flight within SHUTDOWN_TIMEOUT_SECONDS
 * and sends the last acks.
 */
import { Acker } from "../amqp/acker.ts";
import type { BrokerSession } from "../amqp/connection.ts";
import { ConsumerChannel } from "../amqp/consumer-channel.ts";
import { watchAttachment } from "../amqp/consumer-watchdog.ts";
import { DeadLetterQueue } from "../amqp/dead-letter.ts";
import type { Publisher } from "../amqp/publisher.ts";
import { deadLetterQueueName, declareEventTopology, queueDepth } from "../amqp/topology.ts";
import type { DatabaseWatch } from "../db/watch.ts";
import type { EventStore } from "../events/store.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import { aborted } from "../util/abort.ts";
import { settlesWithin } from "../util/timeout.ts";
import type { Announcer } from "./announcer.ts";
import { EventCounters } from "./counters.ts";
import { InFlight } from "./in-flight.ts";
import { Settler } from "./settle.ts";
import { EventWork } from "./work.ts";

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
  const channel = new ConsumerChannel(session, options, work.receive);

  await channel.attach();
  logger.info("consuming events", { queue: options.queueName, prefetch: options.prefetch });

  const watchdog = watchAttachment({
    session, logger, metrics, signal,
    attached: () => channel.attached,
    isDraining: () => channel.isStopping,
    reattach: () => channel.reattach(() => declareEventTopology(session, options, logger)),
  });

  const stopped = (async () => {
    await aborted(signal);
    channel.beginStop();
    await watchdog;
    await channel.cancel();
    if (inFlight.count > 0) logger.info("draining in-flight event messages", { in_flight: inFlight.count });
    const drained = await settlesWithin(inFlight.drained(), options.shutdownTimeoutSeconds * 1000);
    acker.flushAll();
    await deps.announcer.flush();
    if (!drained) logger.warn("drain deadline passed; unfinished messages will be redelivered", { in_flight: inFlight.running });
  })();

  return { attached: () => channel.attached, inFlight: () => inFlight.count, stopped };
}
