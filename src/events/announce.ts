/**
 * Publishes outbox events to the external exchange with confirms, and then
 * forgets them. The fast path publishes right after the commit; the relay
 * picks up what a crash or a broker outage left behind, so a committed
 * change is always announced at least once.
 */
import type { Sql } from "../db/pool.ts";
import { deletePublished, lockLeftovers, type OutboxEvent } from "../db/outbox.ts";
import type { Publisher } from "../amqp/publisher.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import { renderEventBody } from "./external.ts";
import { sleep } from "../util/time.ts";

// Deletes of confirmed rows are batched: one statement per 50 ms or per
// 500 ids instead of one per event, which would double the database work of
// every transition. A crash loses at most this batch of deletes, and that
// only means those events are announced once more.
const FLUSH_MS = 50;
const FLUSH_IDS = 500;
// The relay leaves rows younger than 10 s to the fast path of whichever
// process wrote them (its publish takes milliseconds unless the broker is
// down), so live events are not announced twice.
const LEFTOVER_AGE_MS = 10_000;
const RELAY_EVERY_MS = 5_000;
const RELAY_BATCH = 200;

export interface AnnouncerDeps {
  sql: Sql;
  publisher: Publisher;
  exchange: string;
  logger: Logger;
  metrics: Metrics;
}

export class Announcer {
  private confirmed: number[] = [];
  private flushTimer: ReturnType<typeof setTimeout> | undefined;
  private flushing: Promise<void> = Promise.resolve();

  constructor(private readonly deps: AnnouncerDeps) {}

  /** Publishes each event with a broker confirm; throws if the broker refuses. */
  async publish(events: readonly OutboxEvent[]): Promise<void> {
    for (const e of events) {
      await this.deps.publisher.publish(this.deps.exchange, e.routing_key, renderEventBody(e.payload), {
        contentType: "application/json",
      });
      this.deps.metrics.inc("manman_external_events_published_total", "events published to the external exchange", { routing_key: e.routing_key });
      this.forget(e.id);
    }
  }

  private forget(id: number): void {
    this.confirmed.push(id);
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
        this.deps.logger.warn("could not forget published events; they may be announced again", { error: String(err), count: ids.length }),
      ),
    );
    return this.flushing;
  }

  /** One pass of the relay: publishes leftovers under row locks, deletes them, commits. */
  async relayLeftovers(): Promise<number> {
    const { sql, publisher, exchange } = this.deps;
    return (await sql.begin(async (tx) => {
      const rows = await lockLeftovers(tx as unknown as Sql, LEFTOVER_AGE_MS, RELAY_BATCH);
      for (const e of rows) {
        await publisher.publish(exchange, e.routing_key, renderEventBody(e.payload), { contentType: "application/json" });
      }
      await deletePublished(tx as unknown as Sql, rows.map((r) => Number(r.id)));
      return rows.length;
    })) as number;
  }

  /** Runs the relay until the signal aborts; settles after a last flush. */
  async runRelay(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        const n = await this.relayLeftovers();
        if (n > 0) {
          this.deps.logger.info("announced events left behind by an earlier failure", { count: n });
          this.deps.metrics.inc("manman_external_events_relayed_total", "outbox events published by the relay", {}, n);
          continue;
        }
      } catch (err) {
        this.deps.logger.debug("outbox relay pass failed; will retry", { error: String(err) });
      }
      await sleep(RELAY_EVERY_MS, signal).catch(() => {});
    }
    await this.flush();
  }
}
