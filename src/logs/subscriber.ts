/**
 * One open log stream's view of the hub: the backlog it was promised at
 * subscribe time, then a bounded queue of live lines the hub pushes to it.
 * Lines are shared objects, so a queue holds references, not copies; its
 * bound is the estimated bytes of the lines it still has to send. A stream
 * that lets more than that pile up (a stalled or too slow client) is dropped
 * at once — queue freed, subscription gone — and its next read fails with
 * `LogStreamLagged`, which the RPC layer turns into RESOURCE_EXHAUSTED so
 * the client reconnects with its last sequence number. Nobody else waits.
 *
 * The queue is filled synchronously by `append`, so a burst that arrives in
 * one broker read (hundreds of lines before any stream gets to run) is
 * queued, not lost, as long as it fits the bound.
 */
import { onAbort } from "../util/abort.ts";
import { lineBytes, type LogLine } from "./line.ts";

/** Thrown by a subscription that fell too far behind. */
export class LogStreamLagged extends Error {
  constructor(
    /** The last sequence number this stream delivered (0 = none). */
    readonly lastDelivered: number,
    readonly pendingBytes: number,
    /** Why, when it is not this stream's own bound (the hub's memory bound). */
    why?: string,
  ) {
    super(why ?? `stream fell behind: more than ${pendingBytes} bytes of lines waited to be sent after line ${lastDelivered}`);
    this.name = "LogStreamLagged";
  }
}

export interface LogSubscription extends AsyncIterableIterator<LogLine> {
  /** Waits for a line, then takes up to `max` waiting ones; empty = ended. */
  nextBatch(max: number): Promise<LogLine[]>;
  /** Ends the stream and frees its place at once; idempotent. */
  close(): void;
}

// Past this many delivered entries at the head of the queue array, compact
// it (one splice), so an always-busy stream does not grow its array forever.
const COMPACT_AFTER = 1024;

export class Subscriber implements LogSubscription {
  private readonly queue: LogLine[];
  private head = 0;
  /** Entries at the front of the queue that are backlog (not counted in pendingBytes). */
  private backlogLeft: number;
  private pendingBytes = 0;
  private lastDelivered = 0;
  private closed = false;
  private lagged: LogStreamLagged | undefined;
  private wakeUp: (() => void) | undefined;
  private unwatch: (() => void) | undefined;

  constructor(
    readonly sessionId: number,
    backlog: LogLine[],
    private readonly maxPendingBytes: number,
    /** Called once when the stream ends, however it ends. */
    private readonly detach: (s: Subscriber) => void,
  ) {
    // The backlog is bounded by the session's ring and not counted against
    // the live bound: a new stream always gets its whole backlog.
    this.queue = backlog;
    this.backlogLeft = backlog.length;
  }

  /** Ends the stream when `signal` aborts (the client went away). */
  watch(signal: AbortSignal | undefined): void {
    if (!signal || this.closed) return;
    this.unwatch = onAbort(signal, () => this.close());
  }

  /**
   * The oldest sequence number this stream still has to send, or `next`
   * (the session's next number) when it has nothing waiting. Its queue is
   * contiguous up to the newest line, so it holds every line from there on.
   */
  heldFrom(next: number): number {
    return this.head < this.queue.length ? this.queue[this.head].seq : next;
  }

  /** Lines waiting to be sent (backlog included). */
  get waiting(): number {
    return this.queue.length - this.head;
  }

  /** Ends the stream as if it fell behind, with `why` (the hub needs its memory back). */
  dropBehind(why: string): void {
    if (this.closed) return;
    this.lagged = new LogStreamLagged(this.lastDelivered, this.pendingBytes, why);
    this.close();
  }

  /** From the hub, for every new line of the session. */
  push(line: LogLine): void {
    if (this.closed) return;
    this.pendingBytes += lineBytes(line);
    if (this.pendingBytes > this.maxPendingBytes) {
      this.lagged = new LogStreamLagged(this.lastDelivered, this.maxPendingBytes);
      this.close();
      return;
    }
    this.queue.push(line);
    this.wake();
  }

  private wake(): void {
    const w = this.wakeUp;
    this.wakeUp = undefined;
    w?.();
  }

  async next(): Promise<IteratorResult<LogLine>> {
    const [line] = await this.nextBatch(1);
    return line ? { done: false, value: line } : { done: true, value: undefined };
  }

  /**
   * Waits for at least one line, then takes up to `max` of those waiting, so
   * a writer can send a burst in one write. Empty = the stream has ended.
   */
  async nextBatch(max: number): Promise<LogLine[]> {
    for (;;) {
      if (this.lagged) {
        const err = this.lagged;
        this.lagged = undefined;
        throw err;
      }
      if (this.closed) return [];
      if (this.head < this.queue.length) return this.take(max);
      await new Promise<void>((resolve) => (this.wakeUp = resolve));
    }
  }

  private take(max: number): LogLine[] {
    const end = Math.min(this.queue.length, this.head + max);
    const batch = this.queue.slice(this.head, end);
    for (const line of batch) {
      if (this.backlogLeft > 0) this.backlogLeft--;
      else this.pendingBytes -= lineBytes(line);
    }
    this.head = end;
    this.lastDelivered = batch[batch.length - 1].seq;
    if (this.head >= COMPACT_AFTER) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    return batch;
  }

  async return(): Promise<IteratorResult<LogLine>> {
    this.close();
    return { done: true, value: undefined };
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.queue.length = 0;
    this.head = 0;
    this.pendingBytes = 0;
    this.unwatch?.();
    this.detach(this);
    this.wake();
  }
}
