/**
 * "Say it once per key per window": for log lines about things that repeat
 * every few seconds (a deleted host heartbeating, a full dead-letter queue),
 * where one line per occurrence would drown the log. Pure apart from the
 * injected clock.
 */
import { systemClock, type Clock } from "./time.ts";

// 10,000 keys: far more servers than one fleet has; past that the oldest
// entries are forgotten (at worst one extra log line each).
const MAX_KEYS = 10_000;

export class OncePer {
  private readonly last = new Map<string | number, number>();
  private readonly suppressed = new Map<string | number, number>();

  constructor(
    private readonly windowMs: number,
    private readonly clock: Clock = systemClock,
  ) {}

  /**
   * True when `key` has not been let through within the window. The count of
   * occurrences held back since the last time is returned alongside, so the
   * line that does get out can say how many it stands for.
   */
  take(key: string | number): { allowed: boolean; suppressed: number } {
    const now = this.clock.now();
    const at = this.last.get(key);
    if (at !== undefined && now - at < this.windowMs) {
      this.suppressed.set(key, (this.suppressed.get(key) ?? 0) + 1);
      return { allowed: false, suppressed: 0 };
    }
    const suppressed = this.suppressed.get(key) ?? 0;
    this.suppressed.delete(key);
    this.last.delete(key); // re-insert: Map order is then oldest-first
    this.last.set(key, now);
    if (this.last.size > MAX_KEYS) {
      const oldest = this.last.keys().next().value!;
      this.last.delete(oldest);
      this.suppressed.delete(oldest);
    }
    return { allowed: true, suppressed };
  }
}
