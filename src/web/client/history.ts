/**
 * The archived part of a session's page: which archived lines the page
 * keeps (the store's `older` segment, a contiguous run of the archive),
 * reading more of them as the reader scrolls up, towards the live lines,
 * or elsewhere after a jump, and joining them to the live lines through the
 * Seam (seam.ts). No DOM: the page calls it and redraws; the unit test
 * drives it with a fake archive.
 *
 * The run's forward edge is one of:
 *  - "live": it reaches the live lines (an archived line after T0 was read,
 *    or one at T0 with nothing archived after it): nothing lies between;
 *  - "archive-end": it reaches the end of the archive as last read. With no
 *    live line yet (a finished session, a quiet one) the page is whole;
 *    once one came, the archive may still lack lines older than it (it is a
 *    minute or two behind), so the page polls for them;
 *  - "open": archived lines follow that are not kept: after a jump, read
 *    when the reader scrolls down to them; while catching up with the live
 *    lines, read at once, page after page.
 */
import type { LineStore, ViewerLine } from "./lines.ts";
import { Seam, type SeamLine } from "./seam.ts";

export interface HistoryRead {
  cursor?: string;
  fromTimestamp?: number;
  backward: boolean;
  limit: number;
}
export interface HistoryPage {
  lines: SeamLine[];
  nextCursor: string;
  prevCursor: string;
  hasMore: boolean;
}
export type ReadHistory = (req: HistoryRead) => Promise<HistoryPage>;

// 1000: the service's default page, a few screens; one read per scroll-up.
export const PAGE_LINES = 1000;
// 200 lines of context above a jump target, so the reader lands mid-screen
// with something to scroll up to before the next read.
const JUMP_CONTEXT_LINES = 200;

export type Edge = "live" | "archive-end" | "open";

const asViewerLine = (l: SeamLine): Omit<ViewerLine, "id" | "plain"> => ({ seq: 0, timestamp: l.timestamp, source: l.source, message: l.message });

export class History {
  readonly seam = new Seam();
  /** Nothing older than the kept run is archived. */
  atStart = false;
  edge: Edge = "archive-end";
  /** True once the first read answered (the page then knows whether there is history). */
  started = false;
  /** Cursor before the oldest kept archived line (read older from it) and after the newest (read on from it). */
  #lo: string | undefined;
  #hi: string | undefined;
  /** False after a jump: the run no longer ends where the archive ends, so the gap is read only on demand. */
  #follows = true;
  #queue: Promise<unknown> = Promise.resolve();
  #pending: Promise<boolean> | undefined;

  constructor(
    private readonly store: LineStore,
    private readonly read: ReadHistory,
  ) {}

  /** The newest page of the archive: where a session's page starts. */
  start(): Promise<boolean> {
    return this.#once(async () => {
      const page = await this.read({ backward: true, limit: PAGE_LINES });
      // An empty archive answers with its end as both cursors; reading on
      // from there would wait past the last possible time: read from the start.
      this.#lo = page.lines.length > 0 ? page.nextCursor : undefined;
      this.#hi = page.lines.length > 0 ? page.prevCursor : undefined;
      this.atStart = !page.hasMore;
      this.#keepNewer(page.lines, false);
      this.started = true;
      return page.lines.length > 0;
    });
  }

  /**
   * A live line arrived: true to show it, false when its archived copy is
   * shown. The first one fixes T0: archived lines already kept from T0 on
   * are taken back and passed through the seam first, so that the archived
   * copies of the first live lines keep their place and the live copies
   * are the ones hidden (the burst's lines stay in their order).
   */
  live(line: SeamLine): boolean {
    if (this.seam.t0 === undefined) {
      const t0 = line.timestamp;
      this.seam.t0 = t0;
      const tail = this.store.popOlderWhile((l) => l.timestamp >= t0);
      this.store.appendOlder(this.seam.filterArchived(tail));
      // Reached unless the run stops inside T0's millisecond with more archived after it.
      if (tail.some((l) => l.timestamp > t0) || (tail.length > 0 && this.edge === "archive-end")) this.edge = "live";
    }
    return this.seam.acceptLive(line);
  }

  /**
   * True when archived lines may lie between the kept run and the live
   * lines and the run still follows the archive's end (no jump since): the
   * page reads on (loadNewer) until the edge is "live", waiting between
   * reads while the archive has nothing more.
   */
  get behindLive(): boolean {
    return this.started && this.#follows && this.edge !== "live" && this.seam.t0 !== undefined;
  }

  /** Older archived lines, before the kept ones (the reader reached the top). False when there are none or no room. */
  loadOlder(): Promise<boolean> {
    if (!this.started || this.atStart || this.store.size + PAGE_LINES > this.store.cap) return Promise.resolve(false);
    return this.#once(async () => {
      const page = await this.read({ backward: true, cursor: this.#lo, limit: PAGE_LINES });
      if (page.lines.length > 0) this.#lo = page.nextCursor;
      this.atStart = !page.hasMore;
      this.store.prependOlder(this.seam.filterArchived(page.lines).map(asViewerLine));
      return page.lines.length > 0;
    });
  }

  /** Archived lines after the kept ones, towards the live lines (the gap, or an open edge after a jump). */
  loadNewer(): Promise<boolean> {
    if (!this.started || this.edge === "live" || this.store.size + PAGE_LINES > this.store.cap) return Promise.resolve(false);
    return this.#once(async () => {
      const page = await this.read({ backward: false, cursor: this.#hi, limit: PAGE_LINES });
      if (page.lines.length > 0) this.#hi = page.nextCursor;
      this.#keepNewer(page.lines, page.hasMore);
      return page.lines.length > 0;
    });
  }

  /**
   * Makes `ms` part of the kept run and returns the shown index of the first
   * line at or after it. A time outside the run replaces the run with the
   * lines around it (the store holds a bounded number of lines).
   */
  jump(ms: number): Promise<number> {
    return this.#serial(async () => {
      if (this.#covers(ms)) return this.store.shownIndexAt(ms);
      const [before, after] = await Promise.all([
        this.read({ backward: true, fromTimestamp: ms, limit: JUMP_CONTEXT_LINES }),
        this.read({ backward: false, fromTimestamp: ms, limit: PAGE_LINES }),
      ]);
      this.store.clearOlder();
      this.seam.forgetArchived();
      this.#follows = false;
      this.#lo = before.nextCursor;
      this.atStart = !before.hasMore;
      this.#hi = after.nextCursor;
      this.store.appendOlder(this.seam.filterArchived(before.lines).map(asViewerLine));
      this.#keepNewer(after.lines, after.hasMore);
      return this.store.shownIndexAt(ms);
    });
  }

  /** Whether every archived line at `ms` is already kept (or shown live). */
  #covers(ms: number): boolean {
    const oldest = this.store.oldestOlder;
    const newest = this.store.newestOlder;
    const firstLive = this.store.live().find((l) => l.seq > 0);
    const low = this.atStart ? -Infinity : (oldest?.timestamp ?? firstLive?.timestamp ?? Infinity);
    if (ms < low) return false;
    if (firstLive && ms >= firstLive.timestamp) return true;
    return this.edge === "live" || (newest !== undefined && ms <= newest.timestamp) || (this.edge === "archive-end" && this.seam.t0 === undefined);
  }

  /**
   * Archived lines read forwards: keep those the seam shows, and note where
   * the run's edge now is. It reaches the live lines once a line after T0
   * was read, or one at T0 with nothing archived after it; a page that ends
   * inside T0's millisecond may have more of that millisecond on the next.
   */
  #keepNewer(lines: readonly SeamLine[], more: boolean): void {
    this.store.appendOlder(this.seam.filterArchived(lines).map(asViewerLine));
    const t0 = this.seam.t0;
    const reached = t0 !== undefined && lines.some((l) => l.timestamp > t0 || (!more && l.timestamp === t0));
    this.edge = reached ? "live" : more ? "open" : "archive-end";
    if (this.edge === "live") this.#follows = true;
  }

  /** Runs `work` after every earlier read: one read at a time. */
  #serial<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#queue.catch(() => {}).then(work);
    this.#queue = run;
    return run;
  }

  /** As #serial, but a load asked for while one is waiting or running gets that one's answer (scroll events repeat). */
  #once(work: () => Promise<boolean>): Promise<boolean> {
    if (this.#pending) return this.#pending;
    const run = this.#serial(work);
    this.#pending = run;
    const clear = () => {
      if (this.#pending === run) this.#pending = undefined;
    };
    run.then(clear, clear);
    return run;
  }
}
