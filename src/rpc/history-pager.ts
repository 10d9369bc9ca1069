/**
 * One page of ReadSessionLogs: the `limit` lines nearest a cursor in one
 * direction, merged from the archive objects that can hold them, reading as
 * few objects as the answer needs. No I/O of its own: the objects and their
 * lines come from a PageSource (the database and the store in
 * rpc/log-history.ts, fakes in the unit test).
 *
 * Order. Every line has a position (timestamp, log_id, index in its object)
 * (logs/archive/cursor.ts); objects may overlap in time (a late part of a
 * minute, an early cut), so lines are merged, not concatenated. A line's
 * time is kept inside its object's row range [start, end]: upstream wrote
 * whole seconds in the text but milliseconds in the row, and without the
 * clamp a line could sort before the object that holds it starts.
 *
 * When to stop reading. FORWARD walks objects by (start, log_id); an unread
 * object N holds only lines at or after (N.start, N.log_id, 0), and N is the
 * smallest such bound among all unread ones. So the candidates before that
 * bound are final, and once `limit` of them are, nothing unread can change
 * the page. BACKWARD mirrors it with (end, log_id) descending. The same rule
 * makes a page cut short by the work bound exact: it returns only the
 * candidates that are already final.
 */
import { comparePositions, type LinePosition } from "../logs/archive/cursor.ts";
import type { ArchivedLine } from "../logs/archive/format.ts";

export interface ObjectRef {
  logId: number;
  startMs: number;
  endMs: number;
  filePath: string;
}

export interface PositionedLine extends ArchivedLine, LinePosition {}

export interface PageSource {
  /** The next objects in the walk's order, after `after` (exclusive); fewer than `limit` means no more. */
  objects(after: ObjectRef | undefined, limit: number): Promise<ObjectRef[]>;
  /** The object's lines in file order and its text's size; null when it cannot be read (skipped). */
  read(object: ObjectRef, signal: AbortSignal): Promise<{ lines: ArchivedLine[]; bytes: number } | null>;
}

export interface PageBounds {
  /** Once this many objects (or bytes of text) are read, the page is answered with the lines already final. */
  softObjects: number;
  softBytes: number;
  /** Past these, with no final line yet, the call fails (PageTooCostlyError). */
  hardObjects: number;
  hardBytes: number;
  /** Objects fetched at once (S3 latency hides behind the others). */
  concurrency: number;
  /** Objects asked of the database per statement. */
  batch: number;
}

export interface PageRequest {
  /** Exclusive: FORWARD returns lines after it, BACKWARD lines before it. */
  start: LinePosition;
  forward: boolean;
  limit: number;
}

export interface Page {
  /** Oldest first, whatever the direction. */
  lines: PositionedLine[];
  hasMore: boolean;
  objectsRead: number;
  bytesRead: number;
}

/** The page could not be made final within the hard bounds (thousands of overlapping objects). */
export class PageTooCostlyError extends Error {
  constructor(objects: number, bytes: number) {
    super(`reading ${objects} archive objects (${bytes} bytes of text) did not settle one line of the page`);
    this.name = "PageTooCostlyError";
  }
}

export async function readPage(source: PageSource, req: PageRequest, bounds: PageBounds, signal: AbortSignal): Promise<Page> {
  const { forward, limit } = req;
  // "a comes first in the walk's direction"
  const first = (a: LinePosition, b: LinePosition) => (forward ? comparePositions(a, b) < 0 : comparePositions(a, b) > 0);
  const byWalk = (a: LinePosition, b: LinePosition) => (forward ? comparePositions(a, b) : comparePositions(b, a));
  // The lowest position (in the walk's order) an unread object can hold.
  const boundOf = (o: ObjectRef): LinePosition =>
    forward ? { timestamp: o.startMs, logId: o.logId, index: -1 } : { timestamp: o.endMs, logId: o.logId, index: Number.MAX_SAFE_INTEGER };

  const refs: ObjectRef[] = [];
  let exhausted = false;
  let next = 0; // refs[next] is the first unread object
  const reads = new Map<number, Promise<{ lines: ArchivedLine[]; bytes: number } | null>>();
  const stop = new AbortController();
  const onAbort = () => stop.abort(signal.reason);
  signal.addEventListener("abort", onAbort, { once: true });
  // The best limit+1 candidates so far, in walk order (one extra tells has_more).
  let candidates: PositionedLine[] = [];
  let objectsRead = 0;
  let bytesRead = 0;

  try {
    for (;;) {
      if (!exhausted && refs.length < next + bounds.concurrency) {
        const got = await source.objects(refs[refs.length - 1], bounds.batch);
        refs.push(...got);
        if (got.length < bounds.batch) exhausted = true;
      }
      if (next >= refs.length) break;
      const bound = boundOf(refs[next]!);
      if (candidates.length >= limit && first(candidates[limit - 1]!, bound)) break;
      const overSoft = objectsRead >= bounds.softObjects || bytesRead >= bounds.softBytes;
      if (overSoft && candidates.length > 0 && first(candidates[0]!, bound)) break;
      if (objectsRead >= bounds.hardObjects || bytesRead >= bounds.hardBytes) throw new PageTooCostlyError(objectsRead, bytesRead);
      for (let i = next; i < Math.min(refs.length, next + bounds.concurrency); i++) {
        if (!reads.has(i)) reads.set(i, source.read(refs[i]!, stop.signal));
      }
      const object = refs[next]!;
      const got = await reads.get(next)!;
      reads.delete(next);
      next++;
      objectsRead++;
      if (!got) continue;
      bytesRead += got.bytes;
      const fresh: PositionedLine[] = [];
      got.lines.forEach((line, index) => {
        const timestamp = Math.min(object.endMs, Math.max(object.startMs, line.timestamp));
        const p = { timestamp, source: line.source, message: line.message, logId: object.logId, index };
        if (first(req.start, p)) fresh.push(p);
      });
      candidates = mergeSorted(candidates, fresh.sort(byWalk), byWalk, limit + 1);
    }
  } finally {
    signal.removeEventListener("abort", onAbort);
    stop.abort(); // reads started ahead and not needed
    for (const r of reads.values()) r.catch(() => {});
  }

  const unread = next < refs.length;
  const settled = unread ? candidates.filter((c) => first(c, boundOf(refs[next]!))) : candidates;
  const page = settled.slice(0, limit);
  if (!forward) page.reverse();
  return { lines: page, hasMore: unread || settled.length > limit, objectsRead, bytesRead };
}

/** The first `max` of two sorted arrays, merged. */
function mergeSorted<T>(a: T[], b: T[], order: (x: T, y: T) => number, max: number): T[] {
  if (b.length === 0) return a;
  const out: T[] = [];
  let i = 0;
  let j = 0;
  while (out.length < max && (i < a.length || j < b.length)) {
    if (j >= b.length || (i < a.length && order(a[i]!, b[j]!) <= 0)) out.push(a[i++]!);
    else out.push(b[j++]!);
  }
  return out;
}
