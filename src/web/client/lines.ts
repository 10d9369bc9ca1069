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

export class LineStore {
  private lines: ViewerLine[] = [];
  /** Id of lines[0]. */
  private base = 0;
  private nextId = 0;
  /** Ids of shown lines, ascending; entries before viewStart were trimmed. */
  private view: number[] = [];
  private viewStart = 0;
  private filter: Filter = ALL_SOURCES;
  private needle = "";
  /** Lines dropped from the front because of the cap, since the start. */
  dropped = 0;
  /** Shown lines dropped from the front, since the start (the page shifts its scroll by this). */
  droppedShown = 0;

  /**
   * @param cap lines kept; older ones are dropped in chunks of a tenth of the
   *   cap so trimming costs O(1) per line on average.
   */
  constructor(readonly cap: number) {}

  get size(): number {
    return this.lines.length;
  }

  get shownCount(): number {
    return this.view.length - this.viewStart;
  }

  /** The i-th shown line (0 = oldest shown). */
  shownAt(i: number): ViewerLine {
    return this.lines[this.view[this.viewStart + i]! - this.base]!;
  }

  *shown(): Iterable<ViewerLine> {
    for (let i = this.viewStart; i < this.view.length; i++) yield this.lines[this.view[i]! - this.base]!;
  }

  /** Adds a line; true when the current filter shows it. */
  add(line: Omit<ViewerLine, "id" | "plain">): boolean {
    const full: ViewerLine = { ...line, id: this.nextId++, plain: stripAnsi(line.message) };
    this.lines.push(full);
    const shown = this.matches(full);
    if (shown) this.view.push(full.id);
    if (this.lines.length > this.cap) this.trim(this.lines.length - this.cap + Math.floor(this.cap / 10));
    return shown && full.id >= this.base;
  }

  setFilter(filter: Filter): void {
    this.filter = filter;
    this.needle = filter.query.toLowerCase();
    this.view = [];
    this.viewStart = 0;
    for (const line of this.lines) if (this.matches(line)) this.view.push(line.id);
  }

  getFilter(): Filter {
    return this.filter;
  }

  /** Highest sequence number received (0 when none). */
  get lastSeq(): number {
    for (let i = this.lines.length - 1; i >= 0; i--) if (this.lines[i]!.seq > 0) return this.lines[i]!.seq;
    return 0;
  }

  private matches(line: ViewerLine): boolean {
    const known = (SOURCES as readonly string[]).includes(line.source);
    if (known && !this.filter.sources.has(line.source)) return false;
    if (line.source === "notice") return true;
    return this.needle === "" || line.plain.toLowerCase().includes(this.needle);
  }

  private trim(count: number): void {
    const n = Math.min(count, this.lines.length);
    this.lines.splice(0, n);
    this.base += n;
    this.dropped += n;
    const before = this.viewStart;
    while (this.viewStart < this.view.length && this.view[this.viewStart]! < this.base) this.viewStart++;
    this.droppedShown += this.viewStart - before;
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
