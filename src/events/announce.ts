/**
 * Publishes outbox events to the external exchange with confirms, and then
 * forgets them. The fast path publishes right after the commit; the relay
 * picks up what a crash or a broker outage left behind, so a committed
 * change is always announced at least once.
 *
 * Events whose fast-path publish failed here are remembered by id and
 * relayed as soon as the broker takes publishes again; rows left by a
 * process that died are relayed once they are LEFTOVER_AGE_MS old.
 */
import type { Sql } from "../db/pool.ts";
import { countPending, deletePublished } from "../db/outbox.ts";
import type { OutboxEvent } from "./store.ts";
import { claimDeferred, claimLeftovers, releaseClaims } from "../db/outbox-claim.ts";
import type { Publisher } from "../amqp/publisher.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import { renderEventBody } from "./external.ts";
import { backoff, sleep } from "../util/time.ts";
import { errorMessage } from "../util/errors.ts";

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
// A relay's claim on the rows it is publishing: 60 s covers a batch of 200
// confirmed publishes many times over; if the process dies holding it, the
// rows are relayed again once it ends.
const CLAIM_LEASE_MS = 60_000;
// While our own publishes fail, the relay tries again after 0.5 s doubling
// to RELAY_EVERY_MS: events go out within a second or so of the broker
// coming back, without a tight loop during the outage.
const DEFERRED_RETRY_BASE_MS = 500;
// Ids remembered for a prompt relay; beyond this (a very long outage) the
// rest are relayed by age like a dead process's leftovers.
const DEFERRED_MAX = 10_000;

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
  /** Ids whose fast-path publish failed, oldest first. */
  private readonly deferred = new Set<number>();
  private failingSince = 0;
  private wake: (() => void) | undefined;

  constructor(private readonly deps: AnnouncerDeps) {}

  /** True while publishes to the external exchange fail. */
  get failing(): boolean {
    return this.failingSince > 0;
  }

  /**
   * Publishes each event with a broker confirm. When the broker refuses,
   * the events stay in the outbox for the relay, the first failure is
   * logged (one line per outage, not per event), and this throws.
   */
  async publish(events: readonly OutboxEvent[]): Promise<void> {
    for (const [i, e] of events.entries()) {
      try {
        await this.deps.publisher.publish(this.deps.exchange, e.routing_key, renderEventBody(e.payload), { contentType: "application/json" });
      } catch (err) {
        this.defer(events.slice(i), err);
        throw err;
      }
      this.published(e, "fast");
      this.forget(e.id);
    }
    if (this.failing && this.deferred.size === 0) this.recovered();
  }

  private published(e: OutboxEvent, path: "fast" | "relay"): void {
    this.deps.metrics.inc("manman_external_events_published_total", "events published to the external exchange", { routing_key: e.routing_key });
    if (path === "relay") this.deps.metrics.inc("manman_external_events_relayed_total", "outbox events published by the relay");
  }

  private defer(events: readonly OutboxEvent[], err: unknown): void {
    for (const e of events) if (this.deferred.size < DEFERRED_MAX) this.deferred.add(Number(e.id));
    this.deps.metrics.inc("manman_external_events_deferred_total", "events whose publish failed, left in the outbox for the relay", {}, events.length);
    if (!this.failing) {
      this.failingSince = Date.now();
      this.deps.logger.warn("external events not confirmed by the broker; the outbox relay will publish them", {
        error: errorMessage(err),
      });
    }
    this.wake?.();
  }

  private recovered(): void {
    this.deps.logger.info("external events confirmed again", { failing_ms: Date.now() - this.failingSince });
    this.failingSince = 0;
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

  /**
   * One pass of the relay: claims (one statement each, see outbox-claim.ts)
   * first the events this process failed to publish, then leftovers older
   * than LEFTOVER_AGE_MS; publishes them in order, deletes what was
   * confirmed and gives back what was not. Returns how many it published.
   */
  async relayLeftovers(): Promise<number> {
    const { sql, publisher, exchange } = this.deps;
    const asked = [...this.deferred].slice(0, RELAY_BATCH);
    const mine = await claimDeferred(sql, asked, CLAIM_LEASE_MS);
    // Claimed now, or gone (published and deleted by another relay), or
    // held by another relay's claim: either way no longer ours to chase.
    for (const id of asked) this.deferred.delete(id);
    const old = mine.length < RELAY_BATCH ? await claimLeftovers(sql, LEFTOVER_AGE_MS, CLAIM_LEASE_MS, RELAY_BATCH - mine.length) : [];
    const rows = [...mine, ...old].sort((a, b) => Number(a.id) - Number(b.id));
    const done: number[] = [];
    try {
      for (const e of rows) {
        await publisher.publish(exchange, e.routing_key, renderEventBody(e.payload), { contentType: "application/json" });
        this.published(e, "relay");
        done.push(Number(e.id));
      }
    } catch (err) {
      const left = rows.slice(done.length).map((e) => Number(e.id));
      for (const id of left) if (this.deferred.size < DEFERRED_MAX) this.deferred.add(id);
      await releaseClaims(sql, left, LEFTOVER_AGE_MS).catch(() => {});
      throw err;
    } finally {
      await deletePublished(sql, done);
    }
    if (this.failing && this.deferred.size === 0) this.recovered();
    return rows.length;
  }

  /** Runs the relay until the signal aborts; settles after a last flush. */
  async runRelay(signal: AbortSignal): Promise<void> {
    let failures = 0;
    while (!signal.aborted) {
      try {
        const n = await this.relayLeftovers();
        failures = 0;
        await this.measureWaiting();
        if (n > 0) {
          this.deps.logger.info("announced events left behind by an earlier failure", { count: n });
          continue;
        }
      } catch (err) {
        failures++;
        this.deps.logger.debug("outbox relay pass failed; will retry", { error: errorMessage(err) });
        await this.measureWaiting();
      }
      const wait = this.deferred.size > 0 ? backoff(failures + 1, DEFERRED_RETRY_BASE_MS, RELAY_EVERY_MS) : RELAY_EVERY_MS;
      await this.sleepOrWake(wait, signal);
    }
    await this.flush();
  }

  /** Rows waiting for a confirm: near zero when healthy; growth means events are not getting out. */
  private async measureWaiting(): Promise<void> {
    try {
      this.deps.metrics.set("manman_outbox_events_waiting", "external events committed and not yet confirmed by the broker", await countPending(this.deps.sql));
    } catch {
      // The database is down: DatabaseWatch reports that.
    }
  }

  private async sleepOrWake(ms: number, signal: AbortSignal): Promise<void> {
    const woken = new AbortController();
    this.wake = () => woken.abort();
    await sleep(ms, AbortSignal.any([signal, woken.signal])).catch(() => {});
    this.wake = undefined;
  }
}
