/**
 * The messages being worked on: run in order per entity (the keyed queue),
 * those waiting out an early-retry delay (unsettled, so still in flight),
 * and the entities whose messages are left for redelivery.
 */
import { KeyedQueue } from "../util/keyed-queue.ts";
import { sleep } from "../util/time.ts";
import { EARLY_RETRY_BASE_MS } from "../events/retry.ts";

export class InFlight {
  private readonly keyed = new KeyedQueue();
  private waiting = 0;
  /**
   * Keys with a message left unacked for redelivery during shutdown: their
   * later messages must be left too, or they would overtake it.
   */
  private readonly abandoned = new Set<string>();

  /** Messages received and not yet settled, including those waiting out a delay. */
  get count(): number {
    return this.keyed.pending + this.waiting;
  }

  /** Messages being worked on now (not those waiting out a delay). */
  get running(): number {
    return this.keyed.pending;
  }

  /** Runs `task` after the earlier tasks of `key`, concurrently with other keys. */
  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    return this.keyed.run(key, task);
  }

  /** Calls `then` after `ms`; counted as in flight meanwhile. */
  later(ms: number, then: () => void): void {
    this.waiting++;
    setTimeout(() => {
      this.waiting--;
      then();
    }, ms);
  }

  abandon(key: string): void {
    this.abandoned.add(key);
  }

  isAbandoned(key: string): boolean {
    return this.abandoned.has(key);
  }

  /** Settles once nothing is in flight, including messages still waiting out a delay (each ends within FORWARD_SKIP_RETRY_SECONDS). */
  async drained(): Promise<void> {
    for (;;) {
      await this.keyed.idle();
      if (this.waiting === 0 && this.keyed.pending === 0) return;
      await sleep(EARLY_RETRY_BASE_MS);
    }
  }
}
