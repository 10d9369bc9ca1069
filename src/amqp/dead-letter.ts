/**
 * Dead-lettering with bounds (CONTRACT §1): the dead-letter queue's
 * arguments can't change on a live broker, so the bounds travel with each
 * copy and are checked before each publish.
 * - Age: every copy carries `expiration` = DLQ_MAX_AGE_HOURS (RabbitMQ
 *   drops an expired message when it reaches the head of the queue).
 * - Count: when the queue holds DLQ_MAX_MESSAGES, further dead letters are
 *   dropped, counted and logged at error level (once a minute).
 * The reason, attempts, original exchange and routing key and the time ride
 * in headers (what `manman-processor dlq` reads).
 */
import type { AMQPMessage } from "@cloudamqp/amqp-client";
import type { Publisher } from "./publisher.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import { OncePer } from "../util/rate-limit.ts";
import { systemClock, type Clock } from "../util/time.ts";

export interface DeadLetterOptions {
  queueName: string;
  maxAgeHours: number;
  maxMessages: number;
}

export interface DeadLetterDeps {
  publisher: Publisher;
  /** Messages in the dead-letter queue now (a passive declare). */
  depth(): Promise<number>;
  logger: Logger;
  metrics: Metrics;
  clock?: Clock;
}

// The depth is asked at most once a second: a poison flood dead-letters
// thousands a second, and one passive declare per message would double the
// broker work; between asks, our own publishes are counted locally, so the
// bound is overshot by at most what other replicas add in that second.
const DEPTH_REFRESH_MS = 1000;
// One error line a minute while the queue is full, with the count dropped.
const FULL_LOG_EVERY_MS = 60_000;

export type DeadLetterResult = "sent" | "dropped";

export class DeadLetterQueue {
  private knownDepth = 0;
  private askedAt = -Infinity;
  private asking: Promise<void> | undefined;
  /** Confirmed since the depth was last known; publishes not yet confirmed. Both count toward the bound. */
  private sentSinceAsked = 0;
  private publishing = 0;
  private readonly fullLog: OncePer;
  private readonly clock: Clock;

  constructor(
    private readonly options: DeadLetterOptions,
    private readonly deps: DeadLetterDeps,
  ) {
    this.clock = deps.clock ?? systemClock;
    this.fullLog = new OncePer(FULL_LOG_EVERY_MS, this.clock);
  }

  /** Publishes a copy of `msg` to the dead-letter queue, or drops it when the queue is full. Throws when the publish fails. */
  async send(msg: AMQPMessage, reason: string, attempts: number, fields: Record<string, unknown> = {}): Promise<DeadLetterResult> {
    const { logger, metrics } = this.deps;
    const prefix = routingKeyPrefix(msg.routingKey);
    await this.refreshDepth();
    // Checked and reserved in one synchronous step: dead letters decided
    // together must not all see room for one.
    if (this.knownDepth + this.sentSinceAsked + this.publishing >= this.options.maxMessages) {
      metrics.inc("manman_dead_letters_dropped_total", "dead letters dropped because the dead-letter queue held DLQ_MAX_MESSAGES", { routing_key_prefix: prefix });
      const { allowed, suppressed } = this.fullLog.take("full");
      if (allowed) {
        logger.error("dead-letter queue is full; dropping dead letters (replay or purge it)", {
          queue: this.options.queueName, depth: this.knownDepth, max: this.options.maxMessages,
          dropped_since_last_line: suppressed, routing_key: msg.routingKey, reason, ...fields,
        });
      }
      return "dropped";
    }
    logger.warn("dead-lettered event message", { routing_key: msg.routingKey, reason, attempts, ...fields });
    const headers = {
      ...(msg.properties.headers ?? {}),
      "x-death-reason": reason,
      "x-attempts": attempts,
      "x-original-exchange": msg.exchange,
      "x-original-routing-key": msg.routingKey,
      // When, for `dlq list` (its age) and whoever reads the queue: nothing else in the copy says so.
      "x-dead-lettered-at": new Date(this.clock.now()).toISOString(),
    };
    this.publishing++;
    try {
      await this.deps.publisher.publish("", this.options.queueName, msg.body ?? new Uint8Array(), {
        ...msg.properties,
        headers,
        // Persistent whatever the original was, and aged out by the bound,
        // whatever expiration the original carried.
        deliveryMode: 2,
        expiration: String(this.options.maxAgeHours * 3_600_000),
      });
    } finally {
      this.publishing--;
    }
    this.sentSinceAsked++;
    metrics.inc("manman_event_messages_dead_lettered_total", "event messages sent to the dead-letter queue", { routing_key_prefix: prefix });
    return "sent";
  }

  /** Asks the broker for the depth when the last answer is older than DEPTH_REFRESH_MS; callers at once share one ask. */
  private async refreshDepth(): Promise<void> {
    const now = this.clock.now();
    if (!this.asking && now - this.askedAt >= DEPTH_REFRESH_MS) {
      this.askedAt = now;
      this.asking = (async () => {
        try {
          this.knownDepth = await this.deps.depth();
          this.sentSinceAsked = 0;
          this.deps.metrics.set("manman_dead_letter_queue_messages", "messages in the dead-letter queue when last asked", this.knownDepth);
        } catch {
          // Unknown depth: keep the last answer and send (the publish fails
          // too if the broker is gone), rather than drop on a guess.
        } finally {
          this.asking = undefined;
        }
      })();
    }
    await this.asking;
  }
}

const KNOWN_PREFIXES = new Set(["status.host", "status.session", "status.backup", "health.host"]);

/** `status.session.7` → `status.session`; anything else is `other`, so a metric label has a bounded set of values. */
export function routingKeyPrefix(routingKey: string): string {
  const prefix = routingKey.split(".").slice(0, 2).join(".");
  return KNOWN_PREFIXES.has(prefix) ? prefix : "other";
}
