/**
 * The scrolling log: virtualised. Rows have one fixed height (no wrapping;
 * long lines scroll sideways), so the scroll area is `shown lines × row
 * height` tall and only the rows on screen (plus a margin) exist in the DOM —
 * about a hundred elements whether 10 or 200,000 lines are kept.
 *
 * Follow: while the view is scrolled to the bottom, new lines keep it there.
 * Scrolling up pauses that; the "Follow" button (or scrolling back down)
 * resumes it.
 *
 * Lines inserted or removed above the reader (older history read in while
 * scrolling up, the gap to the live lines filled, the oldest lines trimmed)
 * move the scroll position by as many rows, so the lines under the
 * reader's eyes stay where they are.
 */
import { findMatches, paletteRgb, splitByRanges, type Colour, type Style } from "./ansi.ts";
import { parseAnsi } from "./ansi.ts";
import { localTime, type LineStore, type Shift, type ViewerLine } from "./lines.ts";

// Rows drawn above and below the screen, so a fast wheel turn shows no blank.
const OVERSCAN = 30;
// How close to the bottom still counts as "at the bottom": browsers report
// fractional scroll positions on zoomed pages.
const BOTTOM_SLACK_PX = 4;

export class LogView {
  follow = true;
  private query = "";
  private rowHeight = 0;
  private scheduled = false;
  private programmaticTop = -1;
  /** A row to bring to the top at the next draw (a jump). */
  private target: number | undefined;
  private readonly spacer: HTMLElement;
  private readonly rows: HTMLElement;
  private cache = new Map<number, HTMLElement>();

  constructor(
    private readonly scroller: HTMLElement,
    private readonly store: LineStore,
    private readonly onFollowChange: (follow: boolean) => void,
    /** After each draw: the shown indexes on screen (the page reads more history near the edges). */
    private readonly onRange: (first: number, last: number) => void = () => {},
  ) {
    this.spacer = scroller.querySelector(".spacer")!;
    this.rows = scroller.querySelector(".rows")!;
    scroller.addEventListener("scroll", () => this.onScroll(), { passive: true });
    new ResizeObserver(() => this.update()).observe(scroller);
  }

  /** Highlights `query` in shown lines (the store does the filtering). */
  setQuery(query: string): void {
    this.query = query;
    this.cache.clear();
    this.update();
  }

  /** The filter changed: rows move, so drop the cache. */
  refilter(): void {
    this.cache.clear();
    this.update();
  }

  /** Stops following and brings shown line `index` to the top. */
  scrollToIndex(index: number): void {
    this.target = index;
    this.setFollow(false);
    this.update();
  }

  setFollow(follow: boolean): void {
    if (this.follow === follow) return;
    this.follow = follow;
    this.onFollowChange(follow);
    if (follow) this.update();
  }

  /** Schedules a redraw on the next frame (many lines per frame cost one redraw). */
  update(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    requestAnimationFrame(() => {
      this.scheduled = false;
      this.draw();
    });
  }

  private measure(): number {
    if (this.rowHeight > 0) return this.rowHeight;
    const probe = this.row({ id: -1, seq: 0, timestamp: 0, source: "stdout", message: "M", plain: "M" });
    this.rows.append(probe);
    this.rowHeight = probe.getBoundingClientRect().height || 18;
    probe.remove();
    return this.rowHeight;
  }

  private draw(): void {
    const h = this.measure();
    const count = this.store.shownCount;
    const shifts = this.store.takeShifts();
    this.spacer.style.height = `${count * h}px`;
    if (this.target !== undefined) {
      this.scrollTo(this.target * h);
      this.target = undefined;
    } else if (this.follow) this.scrollTo(this.scroller.scrollHeight);
    else if (shifts.length > 0) this.keepPlace(shifts, h);
    const top = this.scroller.scrollTop;
    const first = Math.max(0, Math.floor(top / h) - OVERSCAN);
    const last = Math.min(count, Math.ceil((top + this.scroller.clientHeight) / h) + OVERSCAN);
    const next = new Map<number, HTMLElement>();
    const els: HTMLElement[] = [];
    for (let i = first; i < last; i++) {
      const line = this.store.shownAt(i);
      const el = this.cache.get(line.id) ?? this.row(line);
      next.set(line.id, el);
      els.push(el);
    }
    this.cache = next;
    this.rows.style.transform = `translateY(${first * h}px)`;
    this.rows.replaceChildren(...els);
    this.onRange(Math.floor(top / h), Math.min(count, Math.ceil((top + this.scroller.clientHeight) / h)));
  }

  /** Moves the scroll position by the rows inserted or removed above the first row on screen. */
  private keepPlace(shifts: readonly Shift[], h: number): void {
    const top = this.scroller.scrollTop;
    const before = Math.floor(top / h);
    let anchor = before;
    for (const s of shifts) {
      if (s.at > anchor) continue;
      // Removed rows that include the anchor leave it at the first row after them.
      anchor = s.delta > 0 ? anchor + s.delta : Math.max(s.at, anchor + s.delta);
    }
    if (anchor !== before) this.scrollTo(Math.max(0, top + (anchor - before) * h));
  }

  private scrollTo(top: number): void {
    this.scroller.scrollTop = top;
    this.programmaticTop = this.scroller.scrollTop;
  }

  private onScroll(): void {
    const s = this.scroller;
    // Our own scrolling (follow, trimming) says nothing about the reader.
    if (s.scrollTop === this.programmaticTop) return this.update();
    this.programmaticTop = -1;
    const atBottom = s.scrollTop + s.clientHeight >= s.scrollHeight - BOTTOM_SLACK_PX;
    this.setFollow(atBottom);
    this.update();
  }

  private row(line: ViewerLine): HTMLElement {
    const el = document.createElement("div");
    el.className = `row src-${line.source}`;
    el.dataset.seq = String(line.seq);
    const ts = document.createElement("span");
    ts.className = "ts";
    ts.textContent = line.timestamp ? localTime(line.timestamp) : "";
    const src = document.createElement("span");
    src.className = "src";
    src.textContent = line.source;
    const msg = document.createElement("span");
    msg.className = "msg";
    const pieces = splitByRanges(parseAnsi(line.message), findMatches(line.plain, this.query));
    for (const p of pieces) {
      const plain = !p.match && Object.keys(p.style).length === 0;
      if (plain) {
        msg.append(p.text);
        continue;
      }
      const span = document.createElement(p.match ? "mark" : "span");
      styleSpan(span, p.style);
      span.textContent = p.text;
      msg.append(span);
    }
    el.append(ts, src, msg);
    return el;
  }
}

/** Palette colours 0–15 use theme classes; others are set through CSSOM (allowed by the CSP, unlike style attributes). */
function styleSpan(span: HTMLElement, style: Style): void {
  let fg: Colour | undefined = style.fg;
  let bg: Colour | undefined = style.bg;
  if (style.inverse) [fg, bg] = [bg ?? "default-bg", fg ?? "default-fg"];
  const classes: string[] = [];
  if (style.bold) classes.push("b");
  if (style.dim) classes.push("dim");
  if (style.italic) classes.push("i");
  if (style.underline) classes.push("u");
  if (style.strike) classes.push("s");
  colour(span, classes, "fg", fg);
  colour(span, classes, "bg", bg);
  if (classes.length) span.className = classes.join(" ");
}

function colour(span: HTMLElement, classes: string[], which: "fg" | "bg", c: Colour | string | undefined): void {
  if (c === undefined) return;
  if (c === "default-bg" || c === "default-fg") classes.push(`${which}-${c}`);
  else if (typeof c === "number" && c < 16) classes.push(`${which}-${c}`);
  else {
    const value = typeof c === "number" ? paletteRgb(c) : c;
    if (which === "fg") span.style.color = value;
    else span.style.backgroundColor = value;
  }
}
