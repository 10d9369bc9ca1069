/**
 * The outbox relay: publishes what the fast path (announcer.ts) could not —
 * events this process failed to publish, as soon as the broker takes
 * publishes again, and rows left by a process that died, once they are
 * LEFTOVER_AGE_MS old — so a committed change is always announced.
 */
import { claimDeferred, claimLeftovers, releaseClaims } from "../db/outbox-claim.ts";
import { countPending, deletePublished } from "../db/outbox.ts";
import type { Sql } from "../db/pool.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import { errorMessage } from "../util/errors.ts";
import { backoff } from "../util/time.ts";
import type { Announcer, AnnouncerDeps } from "./announcer.ts";

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

/** The announcer's own dependencies, and the announcer itself to publish through. */
export type OutboxRelayDeps = Pick<AnnouncerDeps, "sql" | "logger" | "metrics"> & { announcer: Announcer };

export class OutboxRelay {
  constructor(private readonly deps: OutboxRelayDeps) {}

  /**
   * One pass: claims (one statement each, see db/outbox-claim.ts) first the
   * events this process failed to publish, then leftovers older than
   * LEFTOVER_AGE_MS; publishes them in order, deletes what was confirmed
   * and gives back what was not. Returns how many it published.
   */
  async relayOnce(): Promise<number> {
    const { sql, announcer } = this.deps;
    const deferred = announcer.deferred;
    const asked = deferred.oldest(RELAY_BATCH);
    const mine = await claimDeferred(sql, asked, CLAIM_LEASE_MS);
    // Claimed now, or gone (published and deleted by another relay), or
    // held by another relay's claim: either way no longer ours to chase.
    deferred.forget(asked);
    const old = mine.length < RELAY_BATCH ? await claimLeftovers(sql, LEFTOVER_AGE_MS, CLAIM_LEASE_MS, RELAY_BATCH - mine.length) : [];
    const rows = [...mine, ...old].sort((a, b) => Number(a.id) - Number(b.id));
    const done: number[] = [];
    try {
      for (const e of rows) {
        await announcer.send(e);
        announcer.count(e, "relay");
        done.push(Number(e.id));
      }
    } catch (err) {
      const left = rows.slice(done.length).map((e) => Number(e.id));
      deferred.remember(left);
      await releaseClaims(sql, left, LEFTOVER_AGE_MS).catch(() => {});
      throw err;
    } finally {
      await deletePublished(sql, done);
    }
    deferred.confirmed();
    return rows.length;
  }

  /** Runs the relay until the signal aborts; settles after a last flush of the announcer's deletes. */
  async run(signal: AbortSignal): Promise<void> {
    const { announcer, logger } = this.deps;
    let failures = 0;
    while (!signal.aborted) {
      try {
        const n = await this.relayOnce();
        failures = 0;
        await this.measureWaiting();
        if (n > 0) {
          logger.info("announced events left behind by an earlier failure", { count: n });
          continue;
        }
      } catch (err) {
        failures++;
        logger.debug("outbox relay pass failed; will retry", { error: errorMessage(err) });
        await this.measureWaiting();
      }
      const wait = announcer.deferred.size > 0 ? backoff(failures + 1, DEFERRED_RETRY_BASE_MS, RELAY_EVERY_MS) : RELAY_EVERY_MS;
      await announcer.deferred.sleepOrWake(wait, signal);
    }
    await announcer.flush();
  }

  /** Rows waiting for a confirm: near zero when healthy; growth means events are not getting out. */
  private async measureWaiting(): Promise<void> {
    try {
      this.deps.metrics.set("manman_outbox_events_waiting", "external events committed and not yet confirmed by the broker", await countPending(this.deps.sql));
    } catch {
      // The database is down: DatabaseWatch reports that.
    }
  }
}
