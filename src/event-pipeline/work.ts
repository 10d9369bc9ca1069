/**
 * What happens to each event message: decode, then apply in order per
 * server/session (concurrently across them), retrying as events/retry.ts
 * decides, and settle. A message is acked only after its change is
 * committed with its events in the outbox; the next message of its entity
 * starts once the broker has confirmed them, or they are left to the
 * outbox relay.
 *
 * Besides the failures retry.ts sorts out:
 * - a message that cannot be decoded, or is too large, is dead-lettered at
 *   once with the reason in its headers (bounded: see amqp/dead-letter.ts);
 * - a host message for an unknown server is acked and counted instead (a
 *   deleted host keeps heartbeating);
 * - an early message gives its session's queue back while it waits (its
 *   predecessor may be behind it there);
 * - when the broker loses the channel, its messages are dropped unprocessed
 *   (the broker redelivers them, in order) and the watchdog re-attaches.
 */
import type { AMQPMessage } from "@cloudamqp/amqp-client";
import { failureKind } from "../db/errors.ts";
import type { DatabaseWatch } from "../db/watch.ts";
import { applyEvent, type Outcome } from "../events/apply.ts";
import { decodeEvent, idsOf, type EventMessage } from "../events/messages.ts";
import { decideEarly, decideRetry, type EarlyWait, type RetryDecision } from "../events/retry.ts";
import type { EventStore } from "../events/store.ts";
import type { Logger } from "../log.ts";
import { errorMessage } from "../util/errors.ts";
import { OncePer } from "../util/rate-limit.ts";
import { sleep } from "../util/time.ts";
import type { EventCounters } from "./counters.ts";
import type { InFlight } from "./in-flight.ts";
import type { Settler } from "./settle.ts";

// One "connections lost" line per 10 s at most, not one per statement.
const CONNECTION_LOSS_LOG_EVERY_MS = 10_000;

export interface WorkOptions {
  maxRetries: number;
  maxMessageBytes: number;
  forwardSkipRetrySeconds: number;
  s3Bucket?: string;
}

export interface WorkDeps {
  store: EventStore;
  database: DatabaseWatch;
  settler: Settler;
  inFlight: InFlight;
  counters: EventCounters;
  logger: Logger;
}

export class EventWork {
  private readonly connectionLossLog = new OncePer(CONNECTION_LOSS_LOG_EVERY_MS);

  constructor(
    private readonly options: WorkOptions,
    private readonly deps: WorkDeps,
  ) {}

  /** A delivery from the broker: dead-lettered at once when it cannot be worked on, else queued behind its entity's earlier messages. */
  readonly receive = (msg: AMQPMessage): void => {
    const { counters, settler, inFlight } = this.deps;
    if (msg.bodySize > this.options.maxMessageBytes) {
      counters.message("oversize", "rejected");
      void inFlight.run(`oversize:${msg.deliveryTag}`, () =>
        settler.deadLetter(msg, `body of ${msg.bodySize} bytes exceeds MAX_MESSAGE_BYTES (${this.options.maxMessageBytes})`, 1),
      );
      return;
    }
    const decoded = decodeEvent(msg.routingKey, msg.body);
    if (!decoded.ok) {
      counters.message("undecodable", "rejected");
      void inFlight.run(`bad:${msg.deliveryTag}`, () => settler.deadLetter(msg, decoded.reason, 1));
      return;
    }
    this.queue(msg, decoded.event);
  };

  private queue(msg: AMQPMessage, event: EventMessage, early?: EarlyWait): void {
    void this.deps.inFlight.run(event.key, () => this.work(msg, event, early)).catch((err) => this.deps.settler.unexpected(msg, err));
  }

  private async work(msg: AMQPMessage, event: EventMessage, early?: EarlyWait): Promise<void> {
    let attempts = 0;
    let connectionLosses = 0;
    for (;;) {
      if (this.leaveForRedelivery(msg, event)) return;
      attempts++;
      let outcome: Outcome;
      try {
        outcome = await applyEvent(this.deps.store, event, { s3Bucket: this.options.s3Bucket });
      } catch (err) {
        const decision = await this.decide(err, attempts, connectionLosses);
        if (decision === "abandoned") {
          // Shutting down mid-outage: leave it (and its key's later
          // messages) unacked for redelivery.
          this.deps.inFlight.abandon(event.key);
          return;
        }
        if (decision.kind === "dead_letter") return this.deps.settler.deadLetter(msg, decision.reason, attempts, idsOf(event));
        if (decision.kind === "run_again") {
          attempts--; // the outage's or the connection's fault, not the message's
          if (decision.cause === "connection_lost") {
            connectionLosses++;
            this.connectionLost(err);
          }
        } else if (decision.kind === "retry") {
          this.deps.counters.retry();
          this.deps.logger.warn("transient failure; retrying", {
            routing_key: msg.routingKey, ...idsOf(event), attempt: attempts, retry_in_ms: decision.afterMs, error: errorMessage(err),
          });
        }
        // During shutdown the retry still runs (the drain deadline bounds it).
        if ("afterMs" in decision && decision.afterMs > 0) await sleep(decision.afterMs);
        continue;
      }
      if (outcome.kind === "early") {
        const wait = early ?? { since: Date.now(), tries: 0 };
        const next = decideEarly(wait, Date.now(), this.options.forwardSkipRetrySeconds * 1000, outcome.detail);
        if (next.kind === "retry") return this.retryEarly(msg, event, wait, next.afterMs);
        outcome = { ...outcome, kind: "rejected", detail: next.reason };
      }
      return this.deps.settler.settle(msg, event, outcome, attempts);
    }
  }

  /** The retry decision, asking the database first when the failure may be its outage. */
  private async decide(err: unknown, attempts: number, connectionLosses: number): Promise<RetryDecision | "abandoned"> {
    const facts = { error: errorMessage(err), attempts, connectionLosses };
    const first = decideRetry({ ...facts, kind: failureKind(err) }, this.options.maxRetries);
    if (first.kind !== "wait_for_database") return first;
    let answers: boolean;
    try {
      answers = await this.deps.database.answersOrWait(err);
    } catch {
      return "abandoned";
    }
    return decideRetry({ ...facts, kind: failureKind(err, answers) }, this.options.maxRetries);
  }

  private connectionLost(err: unknown): void {
    this.deps.counters.connectionLoss();
    if (this.connectionLossLog.take("lost").allowed) {
      this.deps.logger.warn("database connection lost under a statement; running it again", { error: errorMessage(err) });
    }
  }

  /** Gives the session's queue back and tries `msg` again after `ms`. */
  private retryEarly(msg: AMQPMessage, event: EventMessage, wait: EarlyWait, ms: number): void {
    wait.tries++;
    this.deps.counters.earlyRetry();
    this.deps.inFlight.later(ms, () => this.queue(msg, event, wait));
  }

  /** Leaves a message unacked for the broker to redeliver; false if it must be worked on. */
  private leaveForRedelivery(msg: AMQPMessage, event: EventMessage): boolean {
    // Its channel died: the broker has requeued it (and everything after
    // it), so applying it now would only race its own redelivery. Or an
    // earlier message of its key was left for redelivery at shutdown.
    if (!msg.channel.closed && !this.deps.inFlight.isAbandoned(event.key)) return false;
    this.deps.counters.leftForRedelivery();
    return true;
  }
}
