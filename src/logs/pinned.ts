/**
 * One session's pinned lines: lines its ring has dropped while a stream of
 * the session still had them to send. They stay in memory (the stream's
 * queue holds them), so the hub counts them against its bound. Pure.
 *
 * A stream's queue runs without a gap from its oldest unsent line to the
 * session's newest, so the pinned lines are exactly those from the lowest
 * `heldFrom` of the session's streams up to the ring's first line. Finding
 * that lowest value costs a pass over the streams, so it is kept as a lower
 * bound and recomputed (`trim`) only when it may have moved: when a dropped
 * line is at or past it and nothing is pinned yet, and after every
 * TRIM_EVERY lines pinned. In between the count may include lines a
 * stream has just sent (never fewer than are held); the hub trims before it
 * decides anything on it.
 */
import { lineBytes, type LogLine } from "./line.ts";

/** What PinnedLines needs of a stream (Subscriber). */
export interface Holder {
  heldFrom(next: number): number;
}

// 256 lines: recomputing costs one pass over the session's streams, so a
// session with 1,000 streams and one laggard pays ~4 steps per line.
const TRIM_EVERY = 256;
// As in subscriber.ts: compact the array past this many forgotten entries.
const COMPACT_AFTER = 1024;

export class PinnedLines {
  private lines: LogLine[] = [];
  private head = 0;
  /** No stream holds a line below this. 0 = unknown: any line may be held. */
  private heldFrom = 0;
  private sinceTrim = 0;

  get empty(): boolean {
    return this.head >= this.lines.length;
  }

  /** A new stream holds lines from `from` on. */
  watch(from: number): void {
    this.heldFrom = Math.min(this.heldFrom, from);
  }

  /**
   * The ring dropped `line`: true when it is kept as pinned (a stream may
   * still hold it), false when no stream does. Recomputes the bound first
   * when it may have moved, which can free lines: the hub reads that from
   * `trim`, so it calls `due()`/`trim()` itself before `keep()`.
   */
  keep(line: LogLine): boolean {
    if (line.seq < this.heldFrom) return false;
    this.lines.push(line);
    this.sinceTrim++;
    return true;
  }

  /** True when `seq` is at or past the bound and the bound should be recomputed first. */
  due(seq: number): boolean {
    return seq >= this.heldFrom && (this.empty || this.sinceTrim >= TRIM_EVERY);
  }

  /** Recomputes the bound from the streams; forgets the lines below it and returns their estimated bytes. */
  trim(next: number, holders: Iterable<Holder>): number {
    let from = next;
    for (const h of holders) from = Math.min(from, h.heldFrom(next));
    this.heldFrom = from;
    this.sinceTrim = 0;
    let freed = 0;
    while (this.head < this.lines.length && this.lines[this.head].seq < from) freed += lineBytes(this.lines[this.head++]);
    if (this.empty) {
      this.lines = [];
      this.head = 0;
    } else if (this.head >= COMPACT_AFTER) {
      this.lines.splice(0, this.head);
      this.head = 0;
    }
    return freed;
  }

  /** Forgets every line (the session is forgotten); returns their estimated bytes. */
  clear(): number {
    let freed = 0;
    for (let i = this.head; i < this.lines.length; i++) freed += lineBytes(this.lines[i]);
    this.lines = [];
    this.head = 0;
    return freed;
  }
}
