/**
 * Progress for long commands (cutover, dlq replay and purge, migrate).
 * Results go to stdout, one line each, as they happen; progress goes to
 * stderr, so `cmd | tee file` or `cmd > file` keeps only results while the
 * terminal still shows where the work is. On a terminal the progress is one
 * line redrawn in place (cleared before each result line, drawn again
 * after); anywhere else (a pipe, a file, `kubectl logs` of a Job) it is a
 * plain line at most every PLAIN_EVERY_MS, and none for work that ends
 * sooner, so short runs print their results and nothing else.
 */

/** What the progress needs of a stream: process.stdout and process.stderr fit. */
export interface Terminal {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ToolStreams {
  stdout: Terminal;
  stderr: Terminal;
}

// A plain line every 5 s shows a job is alive in a log without burying its
// results; work shorter than that prints none.
const PLAIN_EVERY_MS = 5_000;
// Ten redraws a second look live; redrawing on each of 100,000 messages
// would spend more time on the terminal than on the work.
const REDRAW_EVERY_MS = 100;
// Erase the whole line and return to its start (ANSI EL2 after CR).
const CLEAR_LINE = "\r\x1b[2K";

export class Progress {
  private current = "";
  private shown = false;
  private lastDraw = -Infinity;
  private lastPlain: number;
  private readonly live: boolean;

  constructor(
    private readonly streams: ToolStreams,
    private readonly now: () => number = Date.now,
    private readonly plainEveryMs = PLAIN_EVERY_MS,
  ) {
    this.live = streams.stderr.isTTY === true;
    this.lastPlain = now();
  }

  /** A result line (stdout). */
  print(line: string): void {
    if (this.live && this.shown) this.streams.stderr.write(CLEAR_LINE);
    this.streams.stdout.write(line + "\n");
    if (this.live && this.shown) this.draw();
  }

  /** A problem line (stderr), kept clear of the progress line. */
  warn(line: string): void {
    if (this.live && this.shown) this.streams.stderr.write(CLEAR_LINE);
    this.streams.stderr.write(line + "\n");
    if (this.live && this.shown) this.draw();
  }

  /** Where the work is now, e.g. "replayed 1200 of 5000". */
  update(text: string): void {
    this.current = text;
    const t = this.now();
    if (this.live) {
      if (t - this.lastDraw >= REDRAW_EVERY_MS) this.draw();
    } else if (t - this.lastPlain >= this.plainEveryMs) {
      this.lastPlain = t;
      this.streams.stderr.write(text + "\n");
    }
  }

  /** The work is over: the progress line goes away (the caller prints its summary). */
  done(): void {
    if (this.live && this.shown) this.streams.stderr.write(CLEAR_LINE);
    this.shown = false;
  }

  private draw(): void {
    this.lastDraw = this.now();
    // One column short of the width: a line that fills it wraps on some
    // terminals, and \r then returns only to the start of the last row.
    const width = Math.max(20, (this.streams.stderr.columns || 80) - 1); // 0 or unknown (a pty without a size): 80
    const text = this.current.length > width ? this.current.slice(0, width - 1) + "…" : this.current;
    this.streams.stderr.write(CLEAR_LINE + text);
    this.shown = true;
  }
}

/** "37%" of `total`, or "" when there is no total. */
export function percent(done: number, total: number): string {
  return total > 0 ? `${Math.floor((100 * done) / total)}%` : "";
}
