/**
 * Publishes outbox events to the external exchange with confirms, and then
 * forgets them. This fast path publishes right after the commit; the relay
 * (outbox-relay.ts) picks up what a crash or a broker outage left behind, so
 * a committed change is always announced at least once.
 */
import { deletePublished } from "../db/outbox.ts";
import type { Sql } from "../db/pool.ts";
import type { Publisher } from "../amqp/publisher.ts";
import { renderEventBody } from "../events/external.ts";
import type { OutboxEvent } from "../events/store.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import { errorMessage } from "../util/errors.ts";
import { DeferredEvents } from "./deferred-events.ts";

// Deletes of confirmed rows are batched: one statement per 50 ms or per
// 500 ids instead of one per event, which would double the database work of
// every transition. A crash loses at most this batch of deletes, and that
// only means those events are announced once more.
const FLUSH_MS = 50;
const FLUSH_IDS = 500;

export interface AnnouncerDeps {
  sql: Sql;
  publisher: Publisher;
  exchange: string;
  logger: Logger;
  metrics: Metrics;
}

export class Announcer {
  /** Events whose fast-path publish failed, for the relay. */
  readonly deferred: DeferredEvents;
  private confirmed: number[] = [];
  private flushTimer: ReturnType<typeof setTimeout> | undefined;
  private flushing: Promise<void> = Promise.resolve();

  constructor(private readonly deps: AnnouncerDeps) {
    this.deferred = new DeferredEvents(deps);
  }

  /** True while publishes to the external exchange fail. */
  get failing(): boolean {
    return this.deferred.failing;
  }

  /**
   * Publishes each event with a broker confirm. When the broker refuses,
   * the events stay in the outbox for the relay, the first failure is
   * logged (one line per outage, not per event), and this throws.
   */
  async publish(events: readonly OutboxEvent[]): Promise<void> {
    for (const [i, e] of events.entries()) {
      try {
        await this.send(e);
      } catch (err) {
        this.deferred.failed(events.slice(i), err);
        throw err;
      }
      this.count(e, "fast");
      this.forget(e.id);
    }
    this.deferred.confirmed();
  }

  /**
   * One confirmed publish of `e`: an event to the external exchange, or a
   * row that names its own exchange (a host command) there, with its exact
   * body and its properties.
   */
  send(e: OutboxEvent): Promise<void> {
    const body = e.body ?? renderEventBody(e.payload);
    return this.deps.publisher.publish(e.exchange ?? this.deps.exchange, e.routing_key, body, { contentType: "application/json", timestamp: new Date(), ...e.properties });
  }

  count(e: OutboxEvent, path: "fast" | "relay"): void {
    // Commands carry a server id in their routing key: counted by exchange, so the label set stays small.
    if (e.exchange) this.deps.metrics.inc("manman_outbox_commands_published_total", "host commands published from the outbox", { exchange: e.exchange });
    else this.deps.metrics.inc("manman_external_events_published_total", "events published to the external exchange", { routing_key: e.routing_key });
    if (path === "relay") this.deps.metrics.inc("manman_external_events_relayed_total", "outbox events published by the relay");
  }

  private forget(id: number): void {
    this.confirmed.push(Number(id));
    if (this.confirmed.length >= FLUSH_IDS) void this.flush();
    else this.flushTimer ??= setTimeout(() => void this.flush(), FLUSH_MS);
  }

  /** Deletes confirmed rows now; failures leave them for the relay (a re-announce, never a loss). */
  flush(): Promise<void> {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    const ids = this.confirmed;
    this.confirmed = [];
    this.flushing = this.flushing.then(() =>
      deletePublished(this.deps.sql, ids).catch((err) =>
        this.deps.logger.warn("could not forget published events; they may be announced again", { error: errorMessage(err), count: ids.length }),
      ),
    );
    return this.flushing;
  }
}
