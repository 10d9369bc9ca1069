/**
 * Where a reconnecting log stream resumes, and what an arriving line means.
 * Pure: the page feeds it the server instance id before each connect and
 * every received sequence number.
 *
 * Sequence numbers are counted per process (CONTRACT §5): after a restart,
 * or on another replica, they start again at 1, so resuming after the last
 * number seen would hide every new line until the count caught up. The
 * SessionViewer's `server_instance_id` tells the page when that happened.
 */
import { backoff } from "../../util/time.ts";

export type Arrival =
  | { kind: "duplicate" }
  /**
   * `missing` lines between the last one and this one are no longer
   * buffered; `renumbered` when the server's numbering started again.
   */
  | { kind: "new"; missing: number; renumbered: boolean };

export class StreamCursor {
  /** Last sequence number received from the current buffer. */
  last = 0;
  /** The server process the current numbering belongs to, once known. */
  instance: string | undefined;

  /**
   * Called before each connect. Returns the `after_sequence_number` to send,
   * and `restarted` when the server process changed since the last connect.
   */
  resume(instance: string | undefined): { after: number; restarted: boolean } {
    const restarted = this.instance !== undefined && instance !== undefined && instance !== this.instance;
    if (instance !== undefined) this.instance = instance;
    if (restarted) this.last = 0;
    this.requested = this.last;
    this.first = true;
    return { after: this.last, restarted };
  }

  private requested = 0;
  private first = false;

  accept(seq: number): Arrival {
    const first = this.first;
    this.first = false;
    // A resumed stream only sends lines after the number asked for, unless
    // the server's buffer began a new life (a TTL expiry, or a restart not
    // seen through the instance id): then it starts from its oldest line,
    // and those lines are new here, not duplicates.
    if (first && this.requested > 0 && seq <= this.requested) {
      this.last = seq;
      return { kind: "new", missing: 0, renumbered: true };
    }
    if (seq <= this.last) return { kind: "duplicate" };
    // The first line of a fresh view may start anywhere (older lines expired):
    // only a jump after lines were received is a gap.
    const missing = this.last === 0 ? 0 : seq - this.last - 1;
    this.last = seq;
    return { kind: "new", missing, renumbered: false };
  }
}

// 500 ms first retry: a restarting service is back within a second or two;
// 10 s cap: an operator watching a page notices a longer outage anyway, and
// one request per 10 s per open tab costs nothing.
export const RETRY_BASE_MS = 500;
export const RETRY_CAP_MS = 10_000;
// A stream that stayed up this long was healthy: the next failure starts the
// backoff again from the first step.
export const HEALTHY_AFTER_MS = 10_000;

/** Delay before reconnect attempt `attempt` (1 = first retry). */
export function retryDelay(attempt: number, random: () => number = Math.random): number {
  return backoff(attempt, RETRY_BASE_MS, RETRY_CAP_MS, random);
}
