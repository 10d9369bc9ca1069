/**
 * The activity strip above the log: lines per time bucket, stderr in red,
 * one bar per bucket; a click jumps the log there. The buckets are the
 * archive's (LogHistory.SessionLogHistogram, counted from the rows, widths
 * chosen as upstream's UI does) plus the live lines the archive does not
 * hold yet, counted here into the same buckets, so a new session's strip
 * is not empty for its first minutes.
 */
import { bucketStart, chooseBucket, denseBuckets, MAX_BUCKETS, type DenseBucket } from "../../logs/archive/histogram.ts";
import { localTime } from "./lines.ts";
import type { SeamLine } from "./seam.ts";

export interface ArchivedHistogram {
  buckets: DenseBucket[];
  bucketSeconds: number;
  /** Last archived line (Unix ms); undefined when nothing is archived. */
  sessionEnd?: number;
}

export interface Strip {
  buckets: DenseBucket[];
  bucketMs: number;
}

const count = (lines: readonly SeamLine[]) => lines.map((l) => ({ timestamp: l.timestamp, source: l.source, lines: 1 }));
// A loop, not Math.min(...spread): 200,000 arguments overflow the stack.
const extreme = (lines: readonly SeamLine[], pick: (a: number, b: number) => number, from: number) =>
  lines.reduce((m, l) => pick(m, l.timestamp), from);

/** The archive's buckets with the live lines after its end added (widening the strip to them). Pure. */
export function stripBuckets(archived: ArchivedHistogram, live: readonly SeamLine[]): Strip {
  const real = live.filter((l) => l.source !== "notice");
  if (archived.buckets.length === 0 || archived.sessionEnd === undefined) {
    if (real.length === 0) return { buckets: [], bucketMs: 60_000 };
    const first = extreme(real, Math.min, Infinity);
    const last = extreme(real, Math.max, -Infinity);
    const { bucketSeconds } = chooseBucket(first, last);
    return { buckets: denseBuckets(first, last, bucketSeconds, count(real)), bucketMs: bucketSeconds * 1000 };
  }
  const end = archived.sessionEnd;
  const width = archived.bucketSeconds * 1000;
  const extra = real.filter((l) => l.timestamp > end);
  const buckets = archived.buckets.map((b) => ({ ...b }));
  const first = buckets[0]!.timestamp;
  const last = extreme(extra, Math.max, end);
  // Twice upstream's cap: live lines run past the archive by minutes, not by
  // another whole range; past that the strip shows the archive alone.
  if ((bucketStart(last, archived.bucketSeconds) - first) / width >= 2 * MAX_BUCKETS) return { buckets, bucketMs: width };
  for (let t = buckets[buckets.length - 1]!.timestamp + width; t <= last; t += width) buckets.push({ timestamp: t, stdoutLines: 0, stderrLines: 0, hostLines: 0 });
  for (const l of extra) {
    const b = buckets[(bucketStart(l.timestamp, archived.bucketSeconds) - first) / width];
    if (!b) continue;
    if (l.source === "stderr") b.stderrLines++;
    else if (l.source === "host") b.hostLines++;
    else b.stdoutLines++;
  }
  return { buckets, bucketMs: width };
}

export class HistogramStrip {
  readonly el: HTMLElement;
  private strip: Strip = { buckets: [], bucketMs: 60_000 };
  private here: HTMLElement | undefined;

  /** Placed just before `log`; `onPick` gets the start of the clicked bucket. */
  constructor(log: HTMLElement, onPick: (ms: number) => void) {
    this.el = document.createElement("div");
    this.el.id = "histogram";
    this.el.className = "histogram";
    this.el.hidden = true;
    this.el.setAttribute("role", "group");
    this.el.setAttribute("aria-label", "Lines over time; click a bar to jump there");
    log.before(this.el);
    this.el.addEventListener("click", (ev) => {
      const bar = (ev.target as HTMLElement).closest<HTMLElement>(".bar");
      if (bar?.dataset.ts) onPick(Number(bar.dataset.ts));
    });
  }

  render(strip: Strip): void {
    this.strip = strip;
    this.here = undefined;
    const total = (b: DenseBucket) => b.stdoutLines + b.stderrLines + b.hostLines;
    const max = Math.max(1, ...strip.buckets.map(total));
    const bars = strip.buckets.map((b) => {
      const bar = document.createElement("div");
      bar.className = "bar";
      bar.dataset.ts = String(b.timestamp);
      bar.dataset.lines = String(total(b));
      bar.title = `${localTime(b.timestamp)}: ${total(b).toLocaleString()} lines${b.stderrLines ? ` (${b.stderrLines.toLocaleString()} stderr)` : ""}`;
      // Heights through CSSOM: the CSP forbids style attributes, not this.
      const fill = document.createElement("div");
      fill.className = "fill";
      fill.style.height = `${(100 * total(b)) / max}%`;
      const err = document.createElement("div");
      err.className = "err";
      err.style.height = total(b) ? `${(100 * b.stderrLines) / total(b)}%` : "0";
      fill.append(err);
      bar.append(fill);
      return bar;
    });
    this.el.replaceChildren(...bars);
    this.el.hidden = bars.length === 0;
  }

  /** Marks the bucket holding `ms` (the first line on screen). */
  mark(ms: number | undefined): void {
    const b = this.strip.buckets;
    const i = ms === undefined || b.length === 0 ? -1 : Math.floor((bucketStart(ms, this.strip.bucketMs / 1000) - b[0]!.timestamp) / this.strip.bucketMs);
    const el = i >= 0 ? (this.el.children[i] as HTMLElement | undefined) : undefined;
    if (el === this.here) return;
    this.here?.classList.remove("here");
    el?.classList.add("here");
    this.here = el;
  }
}
