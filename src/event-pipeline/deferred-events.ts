/**
 * The outbox events this process failed to publish, remembered by id so
 * the relay publishes them as soon as the broker takes publishes again
 * (rather than waiting for them to age into leftovers), and whether
 * publishes are failing now: one log line when they start failing, one when
 * they are confirmed again.
 */
import type { OutboxEvent } from "../events/store.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import { errorMessage } from "../util/errors.ts";
import { sleep } from "../util/time.ts";

// Ids remembered for a prompt relay; beyond this (a very long outage) the
// rest are relayed by age like a dead process's leftovers.
const DEFERRED_MAX = 10_000;

export class DeferredEvents {
  /** Oldest first. */
  private readonly ids = new Set<number>();
  private failingSince = 0;
  private wake: (() => void) | undefined;

  constructor(private readonly deps: { logger: Logger; metrics: Metrics }) {}

  /** True while publishes to the external exchange fail. */
  get failing(): boolean {
    return this.failingSince > 0;
  }

  get size(): number {
    return this.ids.size;
  }

  /** Fast-path publishes that failed: remembered, counted, logged once per outage; the relay is woken. */
  failed(events: readonly OutboxEvent[], err: unknown): void {
    this.remember(events.map((e) => Number(e.id)));
    this.deps.metrics.inc("manman_external_events_deferred_total", "events whose publish failed, left in the outbox for the relay", {}, events.length);
    if (!this.failing) {
      this.failingSince = Date.now();
      this.deps.logger.warn("external events not confirmed by the broker; the outbox relay will publish them", {
        error: errorMessage(err),
      });
    }
    this.wake?.();
  }

  /** Remembers ids (up to DEFERRED_MAX) for the relay's next pass. */
  remember(ids: readonly number[]): void {
    for (const id of ids) if (this.ids.size < DEFERRED_MAX) this.ids.add(id);
  }

  /** The oldest `n` ids, still remembered until `forget`. */
  oldest(n: number): number[] {
    return [...this.ids].slice(0, n);
  }

  forget(ids: readonly number[]): void {
    for (const id of ids) this.ids.delete(id);
  }

  /** After confirmed publishes: once nothing is left deferred, the outage is over (and logged as such). */
  confirmed(): void {
    if (!this.failing || this.ids.size > 0) return;
    this.deps.logger.info("external events confirmed again", { failing_ms: Date.now() - this.failingSince });
    this.failingSince = 0;
  }

  /** Sleeps `ms`, or less when a publish fails meanwhile or the signal aborts. */
  async sleepOrWake(ms: number, signal: AbortSignal): Promise<void> {
    const woken = new AbortController();
    this.wake = () => woken.abort();
    await sleep(ms, AbortSignal.any([signal, woken.signal])).catch(() => {});
    this.wake = undefined;
  }
}
