/**
 * Bucket choice for a session's log histogram, as upstream's GetLogHistogram
 * picks it (UPSTREAM.md §5), so our activity strip and the ManManV2 UI's
 * agree: 1 min buckets under 1 h, 5 min under 6 h, 1 h under 2 days, 1 day
 * under 28 days, else range/200 (at least 1 min); then widened so the range
 * holds at most 500 buckets. Upstream measures the range in whole seconds
 * (Go's Duration.Seconds() truncated), and so does this. Pure.
 */

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
// Upstream's cap: a 500-bucket strip is a bar per ~2 px on a 1000 px screen.
export const MAX_BUCKETS = 500;

export interface BucketChoice {
  bucketSeconds: number;
  /** Upstream's label: "1m", "5m", "1h", "1d" or "<n>s". */
  granularity: string;
}

const LABELS: Record<number, string> = { 60: "1m", 300: "5m", 3600: "1h", 86400: "1d" };

/**
 * The bucket width for the range [startMs, endMs]. `requestedSeconds` > 0 is
 * taken as asked (labelled by its name when it has one), still widened to
 * the 500-bucket cap so no request can make the server count millions of
 * buckets.
 */
export function chooseBucket(startMs: number, endMs: number, requestedSeconds = 0): BucketChoice {
  const durationMs = endMs - startMs;
  const durationSeconds = Math.trunc(durationMs / 1000);
  let choice: BucketChoice;
  if (requestedSeconds > 0) {
    const b = Math.trunc(requestedSeconds);
    choice = { bucketSeconds: b, granularity: LABELS[b] ?? `${b}s` };
  } else if (durationMs < HOUR_MS) choice = { bucketSeconds: 60, granularity: "1m" };
  else if (durationMs < 6 * HOUR_MS) choice = { bucketSeconds: 300, granularity: "5m" };
  else if (durationMs < 2 * DAY_MS) choice = { bucketSeconds: 3600, granularity: "1h" };
  else if (durationMs < 28 * DAY_MS) choice = { bucketSeconds: 86400, granularity: "1d" };
  else {
    const b = Math.max(60, Math.trunc(durationSeconds / 200));
    choice = { bucketSeconds: b, granularity: `${b}s` };
  }
  if (Math.trunc(durationSeconds / choice.bucketSeconds) > MAX_BUCKETS) {
    const b = Math.max(1, Math.trunc(durationSeconds / MAX_BUCKETS));
    choice = { bucketSeconds: b, granularity: `${b}s` };
  }
  return choice;
}

/** Start (Unix ms) of the bucket holding `ms`. */
export function bucketStart(ms: number, bucketSeconds: number): number {
  const width = bucketSeconds * 1000;
  return Math.floor(ms / width) * width;
}

export interface HistogramCount {
  /** Unix ms of the lines (or of the row they were counted from). */
  timestamp: number;
  source: string;
  lines: number;
}

export interface DenseBucket {
  /** Unix ms of the bucket's start. */
  timestamp: number;
  stdoutLines: number;
  stderrLines: number;
  hostLines: number;
}

/**
 * Every bucket from the one holding startMs to the one holding endMs, empty
 * ones included (upstream returns them dense too), with `counts` added in.
 * Counts outside those buckets or of another source are left out.
 */
export function denseBuckets(startMs: number, endMs: number, bucketSeconds: number, counts: Iterable<HistogramCount>): DenseBucket[] {
  const width = bucketSeconds * 1000;
  const first = bucketStart(startMs, bucketSeconds);
  const last = bucketStart(endMs, bucketSeconds);
  if (last < first) return [];
  const buckets: DenseBucket[] = [];
  for (let t = first; t <= last; t += width) buckets.push({ timestamp: t, stdoutLines: 0, stderrLines: 0, hostLines: 0 });
  for (const c of counts) {
    const i = (bucketStart(c.timestamp, bucketSeconds) - first) / width;
    const b = buckets[i];
    if (!b) continue;
    if (c.source === "stdout") b.stdoutLines += c.lines;
    else if (c.source === "stderr") b.stderrLines += c.lines;
    else if (c.source === "host") b.hostLines += c.lines;
  }
  return buckets;
}
