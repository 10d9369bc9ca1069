/**
 * The history side of a session's page: the archived lines above the live
 * ones (history.ts), read as the reader scrolls up (or down towards the
 * live lines after a jump), the wait for an archive that is behind the
 * live lines, the activity strip and its jumps, and a short status next to
 * the line count. Errors never stop the live log: a failed read is shown
 * and tried again.
 */
import { askForToken, history as historyClient, isUnauthenticated, pause, readHistory } from "./api.ts";
import { History, PAGE_LINES } from "./history.ts";
import { HistogramStrip, stripBuckets, type ArchivedHistogram } from "./histogram-strip.ts";
import { localTime, type LineStore } from "./lines.ts";
import type { LogView } from "./log-view.ts";
import type { SeamLine } from "./seam.ts";
import { ConnectError } from "@connectrpc/connect";

// 50 rows (two screens): the next page is asked for before the reader reaches the edge.
const NEAR_EDGE_ROWS = 50;
// 10 s between reads while the archive is behind the live lines: it writes
// a minute 15 s after the minute ends, so the gap closes within a few polls.
const CATCH_UP_POLL_MS = 10_000;
// 30 s: a live session's strip follows the archive; one small SQL query each.
const STRIP_REFRESH_MS = 30_000;
// 5 s: live lines are counted into the strip here, without a request.
const STRIP_LIVE_MS = 5000;
// 1 s: how often the loop looks whether there is anything to do (no request unless there is).
const IDLE_CHECK_MS = 1000;
// 5 s before trying a failed read again.
const RETRY_MS = 5000;

export class PageHistory {
  readonly history: History;
  private readonly strip: HistogramStrip;
  private readonly status: HTMLElement;
  private view: LogView | undefined;
  private error: string | undefined;
  /** After a failed read, reads the scrolling asks for wait until then (no request per frame while the archive is down). */
  private retryAt = 0;
  /** The archive's last histogram answer, and how many live lines the strip last counted. */
  private archived: ArchivedHistogram = { buckets: [], bucketSeconds: 60 };
  private stripLive = -1;

  constructor(
    private readonly sessionId: bigint,
    private readonly store: LineStore,
    /** Redraws the log and the counts after lines came in. */
    private readonly redraw: () => void,
  ) {
    this.history = new History(store, readHistory(sessionId));
    const log = document.getElementById("log")!;
    this.strip = new HistogramStrip(log, (ms) => void this.jump(ms));
    this.status = document.createElement("span");
    this.status.id = "history";
    this.status.className = "history-status";
    document.getElementById("count")!.after(this.status);
    this.show();
  }

  attach(view: LogView): void {
    this.view = view;
  }

  /** Reads the newest archived page, then keeps the strip current and waits out an archive that is behind. */
  async run(): Promise<void> {
    while ((await this.guard(() => this.history.start())) === undefined) await pause(RETRY_MS);
    let stripAt = 0;
    let liveAt = 0;
    for (;;) {
      if (Date.now() - stripAt >= STRIP_REFRESH_MS) {
        stripAt = liveAt = Date.now();
        await this.refreshStrip();
      } else if (Date.now() - liveAt >= STRIP_LIVE_MS) {
        liveAt = Date.now();
        this.renderStrip();
      }
      if (this.history.behindLive) {
        const got = await this.guard(() => this.history.loadNewer());
        // Nothing newer archived yet: give the archive time.
        if (!got || this.history.edge === "archive-end") await pause(CATCH_UP_POLL_MS);
      } else await pause(IDLE_CHECK_MS);
    }
  }

  /** A live line: true to show it (false: the archive's copy is on the page already). */
  live(line: SeamLine): boolean {
    return this.history.live(line);
  }

  /** After each draw: read more near the edges of what is kept, mark the strip. */
  onRange(first: number, last: number): void {
    const h = this.history;
    const mayRead = h.started && Date.now() >= this.retryAt;
    if (mayRead && first < NEAR_EDGE_ROWS && !h.atStart) void this.guard(() => h.loadOlder());
    const seam = this.store.olderShownCount;
    if (mayRead && h.edge === "open" && seam >= first - NEAR_EDGE_ROWS && seam <= last + NEAR_EDGE_ROWS) void this.guard(() => h.loadNewer());
    this.strip.mark(first < this.store.shownCount ? this.store.shownAt(first).timestamp : undefined);
    this.show();
  }

  /** Shows the lines at `ms` at the top of the log (a click on the strip). */
  async jump(ms: number): Promise<void> {
    let index: number | undefined;
    await this.guard(async () => ((index = await this.history.jump(ms)), true));
    this.retryAt = 0;
    if (index !== undefined) this.view?.scrollToIndex(index);
  }

  private async refreshStrip(): Promise<void> {
    try {
      const res = await historyClient.sessionLogHistogram({ sessionId: this.sessionId });
      const buckets = res.buckets.map((b) => ({
        timestamp: Number(b.timestamp),
        stdoutLines: Number(b.stdoutLines),
        stderrLines: Number(b.stderrLines),
        hostLines: Number(b.hostLines),
      }));
      const sessionEnd = res.sessionEnd === undefined ? undefined : Number(res.sessionEnd);
      this.archived = { buckets, bucketSeconds: res.bucketSeconds, sessionEnd };
      this.stripLive = -1;
    } catch {
      // The strip is a convenience: the next refresh tries again.
    }
    this.renderStrip();
  }

  /** The archive's buckets plus the live lines after them; redrawn only when live lines came. */
  private renderStrip(): void {
    const live = this.store.live();
    const seen = live.length + this.store.dropped; // grows with every line, trimmed or not
    if (seen === this.stripLive) return;
    this.stripLive = seen;
    this.strip.render(stripBuckets(this.archived, live.filter((l) => l.seq > 0)));
  }

  /** Runs a read and redraws; on failure shows why (asking for the token when that is why) and answers undefined. */
  private async guard(work: () => Promise<boolean>): Promise<boolean | undefined> {
    try {
      const got = await work();
      this.error = undefined;
      this.redraw();
      this.show();
      return got;
    } catch (err) {
      this.retryAt = Date.now() + RETRY_MS;
      if (isUnauthenticated(err)) await askForToken();
      else this.error = ConnectError.from(err).rawMessage;
      this.show();
      return undefined;
    }
  }

  private show(): void {
    const h = this.history;
    const full = this.store.size + PAGE_LINES > this.store.cap;
    let state: string;
    let text: string;
    if (this.error) [state, text] = ["error", `history unavailable (${this.error}); retrying`];
    else if (!h.started) [state, text] = ["loading", "loading history…"];
    else if (h.behindLive) [state, text] = ["behind", `archive catching up: lines before ${localTime(h.seam.t0!)} appear within ~2 min`];
    else if (!h.atStart && full) [state, text] = ["full", "older lines not kept in this tab (Download saves the whole session)"];
    else if (!h.atStart) [state, text] = ["more", "scroll up for older lines"];
    else if (h.edge === "open") [state, text] = ["open", "scroll down for later lines"];
    else [state, text] = ["whole", "whole session"];
    if (this.status.dataset.state === state && this.status.textContent === text) return;
    this.status.dataset.state = state;
    this.status.textContent = text;
  }
}
