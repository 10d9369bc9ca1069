/**
 * One session's buffer: the last `capacity` lines in a ring, each numbered
 * with the session's next sequence number (1, 2, 3, …, or from `startAt`
 * when the hub remembers where an earlier ring of the session stopped).
 * Pure; the hub decides when a ring is created, trimmed and forgotten, and
 * keeps the totals.
 */
import { lineBytes, type LogLine } from "./line.ts";

export class SessionRing {
  private readonly slots: (LogLine | undefined)[] = [];
  /** Oldest buffered sequence number; equals nextSeq when empty. */
  private firstSeq: number;
  private nextSeq: number;
  /** Estimated bytes of the buffered lines. */
  bytes = 0;

  constructor(
    readonly sessionId: number,
    private readonly capacity: number,
    startAt = 1,
  ) {
    this.firstSeq = this.nextSeq = startAt;
  }

  /** Lines buffered now. */
  get size(): number {
    return this.nextSeq - this.firstSeq;
  }

  private slot(seq: number): number {
    return (seq - 1) % this.capacity;
  }

  /** Numbers and stores a line; the caller makes room first (see `size`, `dropOldest`). */
  push(timestamp: number, source: string, message: string): LogLine {
    // Built field by field: callers may pass objects with more fields.
    const line: LogLine = { sessionId: this.sessionId, seq: this.nextSeq, timestamp, source, message };
    this.slots[this.slot(line.seq)] = line;
    this.nextSeq++;
    this.bytes += lineBytes(line);
    return line;
  }

  /** The sequence number the next line will get. */
  get next(): number {
    return this.nextSeq;
  }

  /** The oldest buffered sequence number (equals `next` when empty). */
  get first(): number {
    return this.firstSeq;
  }

  /** Forgets the oldest line and returns it (undefined when empty). */
  dropOldest(): LogLine | undefined {
    if (this.firstSeq === this.nextSeq) return undefined;
    const i = this.slot(this.firstSeq);
    const line = this.slots[i]!;
    this.slots[i] = undefined;
    this.firstSeq++;
    this.bytes -= lineBytes(line);
    return line;
  }

  /**
   * The buffered lines after `afterSeq` (0 = all of them). An `afterSeq`
   * beyond the newest line comes from an earlier life of the buffer (a
   * restart of the process, or a ring the hub no longer remembers): then
   * every buffered line is returned, so the client gets duplicates rather
   * than a gap.
   */
  after(afterSeq: number): LogLine[] {
    const newest = this.nextSeq - 1;
    const from = afterSeq <= 0 || afterSeq > newest ? this.firstSeq : Math.max(afterSeq + 1, this.firstSeq);
    const lines: LogLine[] = [];
    for (let seq = from; seq < this.nextSeq; seq++) lines.push(this.slots[this.slot(seq)]!);
    return lines;
  }
}
