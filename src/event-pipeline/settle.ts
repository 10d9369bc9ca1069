/**
 * The end of a message: counted, logged, acked, then its events announced;
 * or dead-lettered; or requeued after a failure nobody expected.
 */
import type { AMQPMessage } from "@cloudamqp/amqp-client";
import type { Acker } from "../amqp/acker.ts";
import type { DeadLetterQueue } from "../amqp/dead-letter.ts";
import type { Outcome } from "../events/apply.ts";
import { idsOf, type EventMessage } from "../events/messages.ts";
import type { Logger } from "../log.ts";
import { errorMessage } from "../util/errors.ts";
import { OncePer } from "../util/rate-limit.ts";
import { backoff, sleep } from "../util/time.ts";
import type { Announcer } from "./announcer.ts";
import type { EventCounters } from "./counters.ts";

// A deleted host heartbeats every 5 s for ever: one line per server per
// 10 min says it is happening without filling the log.
const UNKNOWN_SERVER_LOG_EVERY_MS = 10 * 60_000;

// A dead-letter publish is tried 4 times, 100 ms doubling (~0.7 s in all):
// a confirm lost to a blip goes through, and a broker that refuses longer
// gets the message back (requeued) rather than a message held for ever.
const DLQ_PUBLISH_TRIES = 4;
const DLQ_RETRY_BASE_MS = 100;
const DLQ_RETRY_CAP_MS = 1000;
// One line a minute while dead-letter publishes fail, not one per message.
const DLQ_FAILURE_LOG_EVERY_MS = 60_000;

export interface SettlerDeps {
  acker: Acker;
  deadLetters: DeadLetterQueue;
  announcer: Announcer;
  counters: EventCounters;
  logger: Logger;
}

export class Settler {
  private readonly unknownServers = new OncePer(UNKNOWN_SERVER_LOG_EVERY_MS);
  private readonly dlqFailures = new OncePer(DLQ_FAILURE_LOG_EVERY_MS);

  constructor(private readonly deps: SettlerDeps) {}

  /**
   * Sent to the dead-letter queue (or dropped there when it is full) and
   * acked. A publish that keeps failing is tried DLQ_PUBLISH_TRIES times,
   * then the message is requeued, never rejected: an adopted queue may have
   * no dead-letter exchange, and a reject would then drop it without a trace.
   */
  async deadLetter(msg: AMQPMessage, reason: string, attempts: number, fields: Record<string, unknown> = {}): Promise<void> {
    for (let tries = 1; ; tries++) {
      try {
        // Sent or dropped (the queue is full: counted and logged there), the
        // message is done with.
        await this.deps.deadLetters.send(msg, reason, attempts, fields);
        this.deps.acker.ack(msg);
        return;
      } catch (err) {
        // Its channel is gone: the broker redelivers it and it comes here again.
        if (msg.channel.closed) return;
        if (tries >= DLQ_PUBLISH_TRIES) {
          const { allowed, suppressed } = this.dlqFailures.take("dlq");
          if (allowed) this.deps.logger.warn("publishing to the dead-letter queue failed; message requeued to try again", { error: errorMessage(err), routing_key: msg.routingKey, held_back: suppressed });
          this.deps.acker.requeue(msg);
          return;
        }
        await sleep(backoff(tries, DLQ_RETRY_BASE_MS, DLQ_RETRY_CAP_MS));
      }
    }
  }

  /** What the message did: counted and logged by outcome; its events announced before the ack. */
  async settle(msg: AMQPMessage, event: EventMessage, outcome: Outcome, attempts: number): Promise<void> {
    const { logger, counters } = this.deps;
    const fields = { routing_key: msg.routingKey, ...idsOf(event), detail: outcome.detail };
    counters.message(event.kind, outcome.kind);
    if (outcome.kind === "rejected") return this.deadLetter(msg, outcome.detail, attempts, idsOf(event));
    if (outcome.kind === "unknown_server") {
      const serverId = (event.message as { server_id: number }).server_id;
      const { allowed, suppressed } = this.unknownServers.take(serverId);
      if (allowed) logger.warn("message for a server with no row (a deleted host?); acked and counted, said once per 10 min", { ...fields, held_back: suppressed });
    } else if (outcome.kind === "stale") logger.info("ignored stale redelivery", fields);
    else if (event.kind === "heartbeat" && outcome.kind === "unchanged") logger.debug("heartbeat", fields);
    else logger.info(outcome.kind === "applied" ? "applied" : "accepted unchanged", fields);
    // Committed, with its events in the outbox: the message is done with,
    // whether the broker confirms the events now or the relay publishes them
    // later, so it is acked before the confirm. Waiting for the confirm first
    // left a gap in the delivery tags for every message with events, and what
    // settled beyond a gap for 50 ms was acked singly (30% of the messages on
    // a busy box, bench:events, each single ack costing RabbitMQ far more).
    // An ack on a channel that died is dropped: the broker redelivers, and
    // the redelivery changes nothing.
    this.deps.acker.ack(msg);
    if (outcome.events.length > 0) {
      // Still awaited: the entity's next message (and its events) waits for
      // these to be confirmed or handed to the relay, so its events stay in order.
      await this.deps.announcer.publish(outcome.events).catch(() => {});
    }
  }

  unexpected(msg: AMQPMessage, err: unknown): void {
    this.deps.logger.error("unexpected failure handling an event message; requeued", { routing_key: msg.routingKey, error: errorMessage(err) });
    // Unsettled on a live channel it would sit until the channel closes.
    this.deps.acker.requeue(msg);
  }
}
