/**
 * Knows whether the database answers, and lets work wait for it to come
 * back instead of failing messages during an outage. One probe loop at a
 * time however many messages are waiting, and one log line per change of
 * state (down / still down every 30 s / back), not one per message.
 */
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import { backoff, sleep } from "../util/time.ts";

// 30 s between "still down" lines: often enough to see in a log tail that
// the outage goes on, rare enough to not flood a long outage's log.
const STILL_DOWN_EVERY_MS = 30_000;

export class DatabaseWatch {
  private down: { since: number; lastLog: number; recovered: Promise<void> } | null = null;

  constructor(
    private readonly probe: () => Promise<unknown>,
    private readonly logger: Logger,
    private readonly metrics: Metrics,
    private readonly signal: AbortSignal,
  ) {
    metrics.set("manman_database_up", "1 while the database answers", 1);
  }

  get isDown(): boolean {
    return this.down !== null;
  }

  /**
   * After a query failed: true if the database answers (the failure was the
   * message's own), false after waiting for it to come back (the failure was
   * the outage's). Rejects only when the process is shutting down.
   */
  async answersOrWait(cause: unknown): Promise<boolean> {
    if (!this.down) {
      try {
        await this.probe();
        return true;
      } catch {
        this.enterOutage(cause);
      }
    }
    await this.down!.recovered;
    this.signal.throwIfAborted();
    return false;
  }

  private enterOutage(cause: unknown): void {
    const since = Date.now();
    this.logger.error("database unreachable; holding messages until it answers", { error: errorText(cause) });
    this.metrics.set("manman_database_up", "1 while the database answers", 0);
    const state = { since, lastLog: since, recovered: Promise.resolve() };
    state.recovered = this.probeUntilUp(state);
    this.down = state;
  }

  private async probeUntilUp(state: { since: number; lastLog: number }): Promise<void> {
    for (let attempt = 1; !this.signal.aborted; attempt++) {
      // 0.2 s doubling to 5 s: back quickly after a blip, gentle during a long outage.
      try {
        await sleep(backoff(attempt, 200, 5000), this.signal);
      } catch {
        break;
      }
      try {
        await this.probe();
        this.logger.info("database reachable again; resuming", { down_ms: Date.now() - state.since });
        this.metrics.set("manman_database_up", "1 while the database answers", 1);
        break;
      } catch (err) {
        if (Date.now() - state.lastLog >= STILL_DOWN_EVERY_MS) {
          state.lastLog = Date.now();
          this.logger.warn("database still unreachable", { down_ms: Date.now() - state.since, error: errorText(err) });
        }
      }
    }
    this.down = null;
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
