/**
 * manman.processor.v1.LogHistory (proto/manman/processor/v1/log_history.proto):
 * a session's archived log read back from the log_references rows and their
 * gzip objects (CONTRACT §6), file or S3. Transport-free like LogProcessor:
 * `routes` registers it on any Connect router; the wiring
 * (log-pipeline/log-history.ts) gives it to both ports. Token-checked with
 * the LogProcessor's tokens.
 *
 * Decisions. A session with nothing archived, or no such session, answers
 * an empty page (has_more false) and an empty histogram, not NOT_FOUND: the
 * two look the same in the archive, a new session has no rows for its
 * first minute or two, and telling them apart would cost every page a
 * sessions lookup (the viewer has the session list for that). An object a
 * row names but that cannot be read — missing (removed by retention between
 * the query and the read), outside this store (another bucket or
 * directory), or not gzip — is skipped with a warning and counted
 * (manman_log_history_objects_skipped_total{reason}), so one bad object
 * does not hide a session's whole history. Storage or database failures are
 * UNAVAILABLE with the reason; a cursor this service did not make is
 * INVALID_ARGUMENT.
 *
 * Bounds per call (see the constants): at most 10,000 lines; objects are
 * read until the page is settled, 8 at a time, and once 256 objects or
 * 64 MiB of text are read the page is answered with the lines already
 * settled (has_more set); an object over 32 MiB of text is refused
 * (RESOURCE_EXHAUSTED). Across calls at most 16 objects are fetched and
 * decompressed at once, so concurrent viewers cannot hold more than
 * 16 × 32 MiB of text between them.
 */
import { promisify } from "node:util";
import { gunzip } from "node:zlib";
import { Code, ConnectError, type ConnectRouter, type HandlerContext } from "@connectrpc/connect";
import { create } from "@bufbuild/protobuf";
import {
  HistogramBucketSchema,
  HistoryLineSchema,
  LogHistory,
  ReadDirection,
  ReadSessionLogsResponseSchema,
  SessionLogHistogramResponseSchema,
  type ReadSessionLogsRequest,
  type ReadSessionLogsResponse,
  type SessionLogHistogramRequest,
  type SessionLogHistogramResponse,
} from "../gen/manman/processor/v1/log_history_pb.ts";
import type { ArchiveObject, HistogramQuery, HistogramRowCount, ObjectQuery } from "../db/log-history.ts";
import { decodeCursor, encodeCursor, timeBoundary, type LinePosition } from "../logs/archive/cursor.ts";
import { MAX_TIMESTAMP, MIN_TIMESTAMP, parseLines } from "../logs/archive/format.ts";
import { chooseBucket, denseBuckets } from "../logs/archive/histogram.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import type { ObjectStore } from "../storage/store.ts";
import { errorMessage } from "../util/errors.ts";
import { OncePer } from "../util/rate-limit.ts";
import { callerOf, type AccessCheck } from "./access.ts";
import { PageTooCostlyError, readPage, type PageBounds } from "./history-pager.ts";

// The proto's page sizes: 1000 lines by default (a few screens, ~100 KB),
// at most 10,000 (upstream GetHistoricalLogs' default page).
export const DEFAULT_LIMIT = 1000;
export const MAX_LIMIT = 10_000;

export const DEFAULT_BOUNDS: PageBounds & { maxObjectBytes: number; globalReads: number } = {
  // 256 objects: a page of a session that logs a line a minute (one object
  // per line) stops at 256 lines instead of fetching 1,000 objects; a busy
  // session fills a page from one or two objects long before.
  softObjects: 256,
  // 64 MiB of text: ~600,000 lines of 100 B, far past a 10,000-line page.
  softBytes: 64 * 1024 * 1024,
  // Only reached when thousands of objects overlap one position (never
  // written by our writer); then the call fails instead of reading on.
  hardObjects: 2048,
  hardBytes: 512 * 1024 * 1024,
  // 8 fetches in flight: S3's ~20-50 ms per GET hides behind the others.
  concurrency: 8,
  // One statement per 64 objects: a page rarely needs a second.
  batch: 64,
  // 32 MiB of text per object: a writer part holds at most
  // LOG_ARCHIVE_MAX_PENDING_LINES (20,000) lines, ~2-4 MB; more is not ours.
  maxObjectBytes: 32 * 1024 * 1024,
  globalReads: 16,
};

export interface LogHistoryDeps {
  /** db/log-history.ts, bound to a pool. */
  selectObjects(q: ObjectQuery): Promise<ArchiveObject[]>;
  selectArchivedRange(sessionId: number): Promise<{ startMs: number; endMs: number } | null>;
  selectHistogramCounts(q: HistogramQuery): Promise<HistogramRowCount[]>;
  store: ObjectStore;
  access: AccessCheck;
  logger: Logger;
  metrics?: Metrics;
  bounds?: Partial<typeof DEFAULT_BOUNDS>;
}

export interface LogHistoryRpc {
  routes(router: ConnectRouter): void;
}

const gunzipAsync = promisify(gunzip);
const SKIPPED = "manman_log_history_objects_skipped_total";
const SKIPPED_HELP = "archive objects a log_references row names that LogHistory could not read (reason: missing, foreign_path, corrupt)";

export function createLogHistory(deps: LogHistoryDeps): LogHistoryRpc {
  const bounds = { ...DEFAULT_BOUNDS, ...deps.bounds };
  const log = deps.logger.child({ component: "log_history" });
  const warnOnce = new OncePer(60_000);
  const reads = new Semaphore(bounds.globalReads);

  const skip = (reason: string, object: ArchiveObject, detail?: string): null => {
    deps.metrics?.inc(SKIPPED, SKIPPED_HELP, { reason });
    const { allowed, suppressed } = warnOnce.take(reason);
    if (allowed) log.warn("skipped an archive object it could not read", { reason, file_path: object.filePath, log_id: object.logId, detail, suppressed });
    return null;
  };

  async function readObject(object: ArchiveObject, signal: AbortSignal) {
    const key = deps.store.keyOf(object.filePath);
    if (key === null) return skip("foreign_path", object);
    return await reads.run(async () => {
      let gz: Uint8Array | null;
      try {
        gz = await deps.store.get(key, signal);
      } catch (err) {
        if (signal.aborted) throw err;
        const { allowed, suppressed } = warnOnce.take("storage");
        if (allowed) log.warn("reading the log archive's storage failed", { file_path: object.filePath, error: errorMessage(err), suppressed });
        throw new ConnectError(`the log archive's storage did not answer: ${errorMessage(err)}`, Code.Unavailable);
      }
      if (!gz) return skip("missing", object);
      let text: Buffer;
      try {
        text = await gunzipAsync(gz, { maxOutputLength: bounds.maxObjectBytes });
      } catch (err) {
        if ((err as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") {
          throw new ConnectError(`archive object ${object.filePath} holds more than ${bounds.maxObjectBytes} bytes of text; not read`, Code.ResourceExhausted);
        }
        return skip("corrupt", object, errorMessage(err));
      }
      return { lines: parseLines(text.toString("utf8")), bytes: text.length };
    });
  }

  const database = async <T>(work: () => Promise<T>): Promise<T> => {
    try {
      return await work();
    } catch (err) {
      // Already a status (the viewer pool is full: log-pipeline/viewer-pool.ts).
      if (err instanceof ConnectError) throw err;
      log.warn("reading log history failed", { error: errorMessage(err) });
      throw new ConnectError("the database did not answer", Code.Unavailable);
    }
  };

  async function readSessionLogs(req: ReadSessionLogsRequest, ctx: HandlerContext): Promise<ReadSessionLogsResponse> {
    await deps.access.admit(callerOf(ctx));
    const sessionId = checkSession(req.sessionId);
    if (req.direction !== ReadDirection.FORWARD && req.direction !== ReadDirection.BACKWARD) {
      throw new ConnectError(`unknown direction ${req.direction}`, Code.InvalidArgument);
    }
    if (req.limit < 0) throw new ConnectError("limit must not be negative", Code.InvalidArgument);
    const forward = req.direction === ReadDirection.FORWARD;
    const limit = Math.min(req.limit === 0 ? DEFAULT_LIMIT : req.limit, MAX_LIMIT);
    const start = startOf(req, forward);
    const source = {
      objects: (after: ArchiveObject | undefined, n: number) =>
        database(() => deps.selectObjects({ sessionId, forward, fromMs: start.timestamp, after, limit: n })),
      read: readObject,
    };
    let page;
    try {
      page = await readPage(source, { start, forward, limit }, bounds, ctx.signal);
    } catch (err) {
      if (err instanceof PageTooCostlyError) throw new ConnectError(err.message, Code.ResourceExhausted);
      throw err;
    }
    const { lines } = page;
    const oldest = lines[0];
    const newest = lines[lines.length - 1];
    const here = encodeCursor(start);
    return create(ReadSessionLogsResponseSchema, {
      lines: lines.map((l) => create(HistoryLineSchema, { timestamp: BigInt(l.timestamp), source: l.source, message: l.message })),
      nextCursor: oldest && newest ? encodeCursor(forward ? newest : oldest) : here,
      prevCursor: oldest && newest ? encodeCursor(forward ? oldest : newest) : here,
      hasMore: page.hasMore,
    });
  }

  async function sessionLogHistogram(req: SessionLogHistogramRequest, ctx: HandlerContext): Promise<SessionLogHistogramResponse> {
    await deps.access.admit(callerOf(ctx));
    const sessionId = checkSession(req.sessionId);
    if (req.bucketSeconds < 0) throw new ConnectError("bucket_seconds must not be negative", Code.InvalidArgument);
    const range = await database(() => deps.selectArchivedRange(sessionId));
    // Upstream answers an empty archive with no buckets and "1m".
    const empty = { granularity: "1m", bucketSeconds: 60 };
    if (!range) return create(SessionLogHistogramResponseSchema, empty);
    const startMs = req.startTime === undefined ? range.startMs : clampTime(req.startTime);
    const endMs = req.endTime === undefined ? range.endMs : clampTime(req.endTime);
    if (startMs > endMs) throw new ConnectError("start_time is after end_time", Code.InvalidArgument);
    const choice = chooseBucket(startMs, endMs, req.bucketSeconds);
    const counts = await database(() => deps.selectHistogramCounts({ sessionId, startMs, endMs, bucketSeconds: choice.bucketSeconds }));
    const buckets = denseBuckets(
      startMs,
      endMs,
      choice.bucketSeconds,
      counts.map((c) => ({ timestamp: c.bucketMs, source: c.source, lines: c.lines })),
    );
    return create(SessionLogHistogramResponseSchema, {
      buckets: buckets.map((b) =>
        create(HistogramBucketSchema, {
          timestamp: BigInt(b.timestamp),
          stdoutLines: BigInt(b.stdoutLines),
          stderrLines: BigInt(b.stderrLines),
          hostLines: BigInt(b.hostLines),
        }),
      ),
      granularity: choice.granularity,
      bucketSeconds: choice.bucketSeconds,
      sessionStart: BigInt(range.startMs),
      sessionEnd: BigInt(range.endMs),
    });
  }

  return { routes: (router) => void router.service(LogHistory, { readSessionLogs, sessionLogHistogram }) };
}

function checkSession(id: bigint): number {
  if (id < 1n || id > BigInt(Number.MAX_SAFE_INTEGER)) throw new ConnectError("session_id must be a positive integer", Code.InvalidArgument);
  return Number(id);
}

/** Any int64 time as a Unix ms every archive reader takes (one past the end allowed, for "before everything at the end"). */
function clampTime(ms: bigint): number {
  return Number(ms < BigInt(MIN_TIMESTAMP) ? BigInt(MIN_TIMESTAMP) : ms > BigInt(MAX_TIMESTAMP + 1) ? BigInt(MAX_TIMESTAMP + 1) : ms);
}

/** Where the page starts: the cursor, the time, or the session's first (FORWARD) / last (BACKWARD) line. */
function startOf(req: ReadSessionLogsRequest, forward: boolean): LinePosition {
  if (req.start.case === "cursor") {
    const p = decodeCursor(req.start.value);
    if (!p) throw new ConnectError("cursor is not one this service returned", Code.InvalidArgument);
    return p;
  }
  if (req.start.case === "fromTimestamp") return timeBoundary(clampTime(req.start.value));
  return timeBoundary(forward ? MIN_TIMESTAMP : MAX_TIMESTAMP + 1);
}

/** At most `size` tasks at once; the rest wait in order. */
class Semaphore {
  #free: number;
  readonly #waiting: (() => void)[] = [];
  constructor(size: number) {
    this.#free = size;
  }
  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((resolve) => this.#waiting.push(resolve));
    try {
      return await task();
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#free++;
    }
  }
}
