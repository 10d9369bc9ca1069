/**
 * The log view's memory: every received line up to a cap, and the list of
 * lines the current filter shows. Pure (no DOM), so filtering, search and
 * trimming are unit-tested; the page renders only the rows on screen from it.
 */
import type { LogLine } from "../../logs/line.ts";
import { stripAnsi } from "./ansi.ts";

export type Source = "stdout" | "stderr" | "host";
export const SOURCES: readonly Source[] = ["stdout", "stderr", "host"];

/**
 * A log line as the page keeps it: the server's LogLine (its session is the
 * page's) with what the view adds. `seq` is 0 and `source` "notice" for the
 * viewer's own messages (gaps, restarts); `message` is as received, escape
 * codes included.
 */
export interface ViewerLine extends Omit<LogLine, "sessionId"> {
  /** Position in arrival order, never reused (rows key on it). */
  readonly id: number;
  /** The message without escape codes: searched, copied and downloaded. */
  readonly plain: string;
}

export interface Filter {
  /** Sources shown; lines from sources outside SOURCES (and notices) always show. */
  sources: ReadonlySet<string>;
  /** Case-insensitive substring; "" shows every line. */
  query: string;
}

export const ALL_SOURCES: Filter = { sources: new Set(SOURCES), query: "" };

/** Shown lines inserted (delta > 0) or removed (delta < 0) at a shown index: the view keeps the reader's place by them. */
export interface Shift {
  at: number;
  delta: number;
}

/**
 * Two segments in display order: `older`, lines read from the archive
 * (oldest first; grown at both ends as the reader scrolls, replaced by a
 * jump), then `newer`, the live lines and the page's notices in arrival
 * order. The shown list is the filtered concatenation, kept as references
 * so a page of history is one splice.
 */
export class LineStore {
  private older: ViewerLine[] = [];
  private newer: ViewerLine[] = [];
  private nextId = 0;
  /** Shown lines in display order; entries before viewStart were trimmed. */
  private view: ViewerLine[] = [];
  private viewStart = 0;
  /** How many of the shown lines (from viewStart) belong to `older`. */
  private shownOlder = 0;
  private shifts: Shift[] = [];
  private filter: Filter = ALL_SOURCES;
  private needle = "";
  /** Lines dropped from the front because of the cap, since the start. */
  dropped = 0;
  /** Shown lines dropped from the front, since the start. */
  droppedShown = 0;

  /**
   * @param cap lines kept; older ones are dropped in chunks of a tenth of the
   *   cap so trimming costs O(1) per line on average.
   */
  constructor(readonly cap: number) {}

  get size(): number {
    return this.older.length + this.newer.length;
  }

  /** Archived lines kept, and the first and last of them. */
  get olderCount(): number {
    return this.older.length;
  }
  get oldestOlder(): ViewerLine | undefined {
    return this.older[0];
  }
  get newestOlder(): ViewerLine | undefined {
    return this.older[this.older.length - 1];
  }
  /** Shown lines that come from the archive: the shown index where the live lines begin. */
  get olderShownCount(): number {
    return this.shownOlder;
  }

  get shownCount(): number {
    return this.view.length - this.viewStart;
  }

  /** The i-th shown line (0 = oldest shown). */
  shownAt(i: number): ViewerLine {
    return this.view[this.viewStart + i]!;
  }

  *shown(): Iterable<ViewerLine> {
    for (let i = this.viewStart; i < this.view.length; i++) yield this.view[i]!;
  }

  /** Live lines and notices kept, in arrival order. */
  live(): readonly ViewerLine[] {
    return this.newer;
  }

  /** Index of the first shown line (not a notice) at or after `ms`; shownCount when none. */
  shownIndexAt(ms: number): number {
    for (let i = 0; i < this.shownCount; i++) {
      const line = this.shownAt(i);
      if (line.source !== "notice" && line.timestamp >= ms) return i;
    }
    return this.shownCount;
  }

  /** The shifts since the last call. */
  takeShifts(): Shift[] {
    const s = this.shifts;
    this.shifts = [];
    return s;
  }

  /** Adds a live line (or a notice) at the end; true when the current filter shows it. */
  add(line: Omit<ViewerLine, "id" | "plain">): boolean {
    const full = this.make(line);
    this.newer.push(full);
    const shown = this.matches(full);
    if (shown) this.view.push(full);
    if (this.size > this.cap) this.trim(this.size - this.cap + Math.floor(this.cap / 10));
    return shown && this.newer[this.newer.length - 1] === full; // false when trimmed at once (a tiny cap)
  }

  /** Archived lines before every kept one (scrolling up). */
  prependOlder(lines: readonly Omit<ViewerLine, "id" | "plain">[]): void {
    const full = lines.map((l) => this.make(l));
    this.older = full.concat(this.older);
    this.insertShown(0, full);
  }

  /** Archived lines after the kept archived ones, before the live lines (towards the seam). */
  appendOlder(lines: readonly Omit<ViewerLine, "id" | "plain">[]): void {
    const full = lines.map((l) => this.make(l));
    this.older.push(...full);
    this.insertShown(this.shownOlder, full);
  }

  /** Removes and returns the archived lines at the end for which `test` holds (the seam's tail). */
  popOlderWhile(test: (line: ViewerLine) => boolean): ViewerLine[] {
    let n = 0;
    while (n < this.older.length && test(this.older[this.older.length - 1 - n]!)) n++;
    const out = this.older.splice(this.older.length - n, n);
    this.removeShown(new Set(out));
    return out;
  }

  /** Drops every archived line (a jump elsewhere). */
  clearOlder(): void {
    this.removeShown(new Set(this.older));
    this.older = [];
  }

  setFilter(filter: Filter): void {
    this.filter = filter;
    this.needle = filter.query.toLowerCase();
    const older = this.older.filter((l) => this.matches(l));
    this.view = older.concat(this.newer.filter((l) => this.matches(l)));
    this.viewStart = 0;
    this.shownOlder = older.length;
    this.shifts = []; // every row moved: the view redraws from scratch
  }

  getFilter(): Filter {
    return this.filter;
  }

  /** Highest sequence number received (0 when none). */
  get lastSeq(): number {
    for (let i = this.newer.length - 1; i >= 0; i--) if (this.newer[i]!.seq > 0) return this.newer[i]!.seq;
    return 0;
  }

  private make(line: Omit<ViewerLine, "id" | "plain">): ViewerLine {
    return { ...line, id: this.nextId++, plain: stripAnsi(line.message) };
  }

  /** Whether the current filter shows `line`. */
  matches(line: ViewerLine): boolean {
    const known = (SOURCES as readonly string[]).includes(line.source);
    if (known && !this.filter.sources.has(line.source)) return false;
    if (line.source === "notice") return true;
    return this.needle === "" || line.plain.toLowerCase().includes(this.needle);
  }

  private insertShown(at: number, lines: ViewerLine[]): void {
    const shown = lines.filter((l) => this.matches(l));
    if (shown.length === 0) return;
    const i = this.viewStart + at;
    this.view = this.view.slice(0, i).concat(shown, this.view.slice(i));
    this.shownOlder += shown.length;
    this.shifts.push({ at, delta: shown.length });
  }

  /** Removes archived lines from the shown list (they are one contiguous run of it). */
  private removeShown(gone: Set<ViewerLine>): void {
    if (gone.size === 0) return;
    const from = this.view.findIndex((l, i) => i >= this.viewStart && gone.has(l));
    if (from < 0) return;
    let to = from;
    while (to < this.view.length && gone.has(this.view[to]!)) to++;
    this.view.splice(from, to - from);
    this.shownOlder -= to - from;
    this.shifts.push({ at: from - this.viewStart, delta: from - to });
  }

  private trim(count: number): void {
    let n = Math.min(count, this.size);
    this.dropped += n;
    const fromOlder = Math.min(n, this.older.length);
    const gone = new Set(this.older.splice(0, fromOlder));
    n -= fromOlder;
    for (const l of this.newer.splice(0, n)) gone.add(l);
    const before = this.viewStart;
    while (this.viewStart < this.view.length && gone.has(this.view[this.viewStart]!)) this.viewStart++;
    const removed = this.viewStart - before;
    this.shownOlder = Math.max(0, this.shownOlder - removed);
    this.droppedShown += removed;
    if (removed > 0) this.shifts.push({ at: 0, delta: -removed });
    if (this.viewStart > this.view.length / 2) {
      this.view = this.view.slice(this.viewStart);
      this.viewStart = 0;
    }
  }
}

/** "2026-11-25 14:03:01.123" in the browser's time zone. */
export function localTime(ms: number): string {
  const d = new Date(ms);
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

/** One line as copied or downloaded: local time, source, text without escape codes. */
export function lineAsText(line: ViewerLine): string {
  return `${localTime(line.timestamp)} ${line.source.padEnd(6)} ${line.plain}`;
}
