/**
 * The lines waiting to be archived, grouped in windows by (session, UTC
 * minute): one window becomes one archive object and one log_references row.
 * Each line carries an opaque handle (the broker delivery to ack once the
 * object is stored); the handles come back out with the lines, so the writer
 * acks exactly the lines it stored. Pure: the caller passes the time in.
 *
 * Taking a window removes it; a line that arrives later for the same minute
 * opens a new window, which the writer stores as the next part
 * (`mm.<n>.log.gz`). So a line is handed out exactly once.
 */
import { clampTimestamp, type ArchivedLine } from "./format.ts";
import { minuteOf } from "./keys.ts";

const MINUTE_MS = 60_000;

export interface PendingLine extends ArchivedLine {
  sessionId: number;
}

export interface WindowId {
  sessionId: number;
  /** Unix ms of the minute's start. */
  minuteMs: number;
}

export interface TakenWindow<H> extends WindowId {
  /** By timestamp; lines of one millisecond stay in arrival order. */
  lines: ArchivedLine[];
  /** handles[i] came with lines[i]. */
  handles: H[];
  count: number;
  /** First and last line's time (the row's start_time / end_time). */
  startTime: number;
  endTime: number;
  /** The row's `source`: the lines' one source, or `host` when they mix (upstream writes `host`). */
  source: string;
}

interface Window<H> extends WindowId {
  lines: ArchivedLine[];
  handles: H[];
  /** False once a line arrived older than the one before it: take() sorts then. */
  inOrder: boolean;
  startTime: number;
  endTime: number;
  source: string | null;
  /** Wall-clock ms of the first add (the `now` given to add), NaN when not given. */
  firstAddedAt: number;
}

const keyOf = (sessionId: number, minuteMs: number) => `${sessionId}/${minuteMs}`;
const idOf = (w: WindowId): WindowId => ({ sessionId: w.sessionId, minuteMs: w.minuteMs });
const oldestFirst = (a: WindowId, b: WindowId) => a.minuteMs - b.minuteMs || a.sessionId - b.sessionId;

export class PendingWindows<H> {
  readonly #windows = new Map<string, Window<H>>();
  #pendingLines = 0;

  /** Lines held in windows (not those of windows already taken: the writer counts those until it acks them). */
  get pendingLines(): number {
    return this.#pendingLines;
  }

  get windowCount(): number {
    return this.#windows.size;
  }

  /**
   * Adds a line to its (session, minute) window; returns that window's id.
   * `now` (wall-clock ms) is remembered for the window's first line, for heldLongerThan.
   */
  add(line: PendingLine, handle: H, now = NaN): WindowId {
    // Every reader of the archive takes years 0000-9999 (see clampTimestamp).
    const timestamp = clampTimestamp(line.timestamp);
    const stored: ArchivedLine = timestamp === line.timestamp ? line : { ...line, timestamp };
    const minuteMs = minuteOf(timestamp);
    const key = keyOf(line.sessionId, minuteMs);
    let w = this.#windows.get(key);
    if (!w) {
      w = { sessionId: line.sessionId, minuteMs, lines: [], handles: [], inOrder: true, startTime: timestamp, endTime: timestamp, source: line.source, firstAddedAt: now };
      this.#windows.set(key, w);
    }
    if (timestamp < w.endTime) w.inOrder = false;
    w.startTime = Math.min(w.startTime, timestamp);
    w.endTime = Math.max(w.endTime, timestamp);
    if (w.source !== line.source) w.source = null;
    w.lines.push(stored);
    w.handles.push(handle);
    this.#pendingLines++;
    return { sessionId: w.sessionId, minuteMs };
  }

  /** Windows whose minute ended at least `graceMs` before `now`, oldest first. */
  due(now: number, graceMs: number): WindowId[] {
    const out: WindowId[] = [];
    for (const w of this.#windows.values()) if (w.minuteMs + MINUTE_MS + graceMs <= now) out.push(idOf(w));
    return out.sort(oldestFirst);
  }

  /**
   * Windows whose first line arrived at least `maxHoldMs` before `now`,
   * whatever their minute: a host clock running ahead dates lines in a
   * minute that has not ended yet, and holding them until it does could
   * outlast the broker's consumer_timeout. Windows added without a time are
   * never returned.
   */
  heldLongerThan(now: number, maxHoldMs: number): WindowId[] {
    const out: WindowId[] = [];
    for (const w of this.#windows.values()) if (w.firstAddedAt + maxHoldMs <= now) out.push(idOf(w));
    return out.sort(oldestFirst);
  }

  /** Every window of one session, oldest first (the session ended: write them all now). */
  ofSession(sessionId: number): WindowId[] {
    const out: WindowId[] = [];
    for (const w of this.#windows.values()) if (w.sessionId === sessionId) out.push(idOf(w));
    return out.sort(oldestFirst);
  }

  /** Every window, oldest first (shutdown). */
  all(): WindowId[] {
    return [...this.#windows.values()].map(idOf).sort(oldestFirst);
  }

  /**
   * The windows to write early when more than `maxPendingLines` are held:
   * the oldest first (by when their first line came: the map keeps that
   * order), until what stays is at most `lowWater`. Empty while the bound
   * holds.
   *
   * Oldest, not biggest: the broker's lines are acked by one multiple-ack
   * only up to the first line still held (amqp/acker.ts), so the window
   * holding the oldest line holds back every line behind it, and what
   * waits there too long is acked one line at a time, which RabbitMQ pays
   * for by the unacked lines below each. Biggest-first never took a
   * minute's last lines (a small window once its session moved on to the
   * next minute) before their grace: measured (bench:archive, lines dated
   * now), 110,824 of 200,000 lines were acked singly, RabbitMQ did 5.6
   * times the work a line and took lines at a quarter of its ceiling.
   *
   * lowWater defaults to half the bound: cutting only back to the bound
   * itself would cut again at the very next line, one small extra part per
   * line; cutting to half makes each round write at least maxPendingLines/2
   * lines, so a flood costs one extra part per that many lines.
   */
  toCutEarly(maxPendingLines: number, lowWater = Math.floor(maxPendingLines / 2)): WindowId[] {
    if (this.#pendingLines <= maxPendingLines) return [];
    const out: WindowId[] = [];
    let left = this.#pendingLines;
    for (const w of this.#windows.values()) {
      if (left <= lowWater) break;
      out.push(idOf(w));
      left -= w.lines.length;
    }
    return out;
  }

  /**
   * Windows whose first line's handle `isBefore` says came before something
   * (the archiver: before a line already written), in the order they were
   * opened: the lines that hold back the acks of those behind them.
   */
  openedBefore(isBefore: (firstHandle: H) => boolean): WindowId[] {
    const out: WindowId[] = [];
    for (const w of this.#windows.values()) if (isBefore(w.handles[0]!)) out.push(idOf(w));
    return out;
  }

  /** Removes a window and hands out its lines and handles; undefined when there is no such window (already taken). */
  take(id: WindowId): TakenWindow<H> | undefined {
    const key = keyOf(id.sessionId, id.minuteMs);
    const w = this.#windows.get(key);
    if (!w) return undefined;
    this.#windows.delete(key);
    this.#pendingLines -= w.lines.length;
    let { lines, handles } = w;
    if (!w.inOrder) {
      // Array.prototype.sort is stable (ES2019): same-millisecond lines keep arrival order.
      const order = lines.map((_, i) => i).sort((a, b) => lines[a].timestamp - lines[b].timestamp);
      lines = order.map((i) => w.lines[i]);
      handles = order.map((i) => w.handles[i]);
    }
    return {
      sessionId: w.sessionId,
      minuteMs: w.minuteMs,
      lines,
      handles,
      count: lines.length,
      startTime: w.startTime,
      endTime: w.endTime,
      source: w.source ?? "host",
    };
  }
}
