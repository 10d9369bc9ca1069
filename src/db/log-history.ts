/**
 * The statements behind LogHistory (rpc/log-history.ts): read-only, on the
 * `log_references` rows of CONTRACT §6, `state = 'complete'` only (as the
 * ManManV2 API reads them: a pending row's object may not exist yet).
 *
 * One archive object per file_path. Upstream's archiver rewrote an object
 * when late lines came (its APPENDED marker) and inserted a second row for
 * the same file_path, so rows are grouped by file_path: the object is read
 * once, under the smallest log_id of its rows (stable, so cursors that name
 * it stay valid) and the union of their start/end. Our writer never shares
 * a file_path, so for its rows a group is one row.
 *
 * Times. The columns are TIMESTAMP holding UTC with (at most) microseconds;
 * every value here is cut to the millisecond (date_trunc) on the server,
 * before comparing and ordering, so SQL orders objects exactly as the pager
 * compares positions in Unix ms. Values go in as Unix ms turned into a
 * timestamp by integer arithmetic (no float, no session TimeZone).
 *
 * Cost: there is no index on (session_id, start_time), so each statement
 * reads the session's rows through idx_log_refs_session_id and sorts the
 * ones that pass in memory (a top-N sort under LIMIT): ~10,000 rows for a
 * week-long session, a few milliseconds.
 */
import type { Sql } from "./pool.ts";

const utc = (sql: Sql, ms: number) =>
  sql`(timestamp 'epoch' + (${ms}::bigint / 86400000) * interval '1 day' + (${ms}::bigint % 86400000) * interval '1 millisecond')`;

/** One archive object of a session, as the pager walks them. */
export interface ArchiveObject {
  /** Smallest log_id of the rows naming this object. */
  logId: number;
  filePath: string;
  /** First and last line's time (Unix ms), over all its rows. */
  startMs: number;
  endMs: number;
}

export interface ObjectQuery {
  sessionId: number;
  /**
   * FORWARD: objects whose last line is at or after `fromMs`, by (start, log_id).
   * BACKWARD: objects whose first line is at or before `fromMs`, by (end, log_id) descending.
   */
  forward: boolean;
  fromMs: number;
  /** Keyset: continue after this object in the same order (exclusive). */
  after?: ArchiveObject;
  limit: number;
}

type ObjectRow = { log_id: bigint; file_path: string; start_ms: bigint; end_ms: bigint };

export async function selectArchiveObjects(sql: Sql, q: ObjectQuery): Promise<ArchiveObject[]> {
  const objects = sql`
    SELECT min(log_id) AS log_id, file_path,
           date_trunc('milliseconds', min(start_time)) AS start_time,
           date_trunc('milliseconds', max(end_time)) AS end_time
    FROM log_references
    WHERE session_id = ${q.sessionId}::bigint AND state = 'complete'
    GROUP BY file_path`;
  // Already cut to the millisecond, so the epoch (numeric) times 1000 is a whole number.
  const columns = sql`(extract(epoch FROM start_time) * 1000)::bigint AS start_ms, (extract(epoch FROM end_time) * 1000)::bigint AS end_ms`;
  const rows = q.forward
    ? await sql<ObjectRow[]>`
        WITH objects AS (${objects})
        SELECT log_id, file_path, ${columns}
        FROM objects
        WHERE end_time >= ${utc(sql, q.fromMs)}
          ${q.after ? sql`AND (start_time, log_id) > (${utc(sql, q.after.startMs)}, ${q.after.logId}::bigint)` : sql``}
        ORDER BY start_time, log_id
        LIMIT ${q.limit}`
    : await sql<ObjectRow[]>`
        WITH objects AS (${objects})
        SELECT log_id, file_path, ${columns}
        FROM objects
        WHERE start_time <= ${utc(sql, q.fromMs)}
          ${q.after ? sql`AND (end_time, log_id) < (${utc(sql, q.after.endMs)}, ${q.after.logId}::bigint)` : sql``}
        ORDER BY end_time DESC, log_id DESC
        LIMIT ${q.limit}`;
  return rows.map((r) => ({ logId: Number(r.log_id), filePath: r.file_path, startMs: Number(r.start_ms), endMs: Number(r.end_ms) }));
}

/** The session's first and last archived line (Unix ms); null when nothing is archived. */
export async function selectArchivedRange(sql: Sql, sessionId: number): Promise<{ startMs: number; endMs: number } | null> {
  const [row] = await sql<{ start_ms: bigint | null; end_ms: bigint | null }[]>`
    SELECT (extract(epoch FROM date_trunc('milliseconds', min(start_time))) * 1000)::bigint AS start_ms,
           (extract(epoch FROM date_trunc('milliseconds', max(end_time))) * 1000)::bigint AS end_ms
    FROM log_references
    WHERE session_id = ${sessionId}::bigint AND state = 'complete'`;
  if (!row || row.start_ms === null || row.end_ms === null) return null;
  return { startMs: Number(row.start_ms), endMs: Number(row.end_ms) };
}

export interface HistogramQuery {
  sessionId: number;
  /** Rows whose start_time lies in [startMs, endMs] are counted. */
  startMs: number;
  endMs: number;
  bucketSeconds: number;
}

export interface HistogramRowCount {
  /** Start of the bucket, Unix ms. */
  bucketMs: number;
  source: string;
  lines: number;
}

/**
 * Lines per bucket and source, summed from the rows' line_count by the
 * bucket of their start_time, as upstream's GetLogHistogram does (no object
 * is read). The bucket is floor(start / width): the same as
 * logs/archive/histogram.ts bucketStart (upstream rounds the epoch to whole
 * seconds first, which can put a row starting at :59.6 in the next bucket).
 */
export async function selectHistogramCounts(sql: Sql, q: HistogramQuery): Promise<HistogramRowCount[]> {
  const widthMs = q.bucketSeconds * 1000;
  const rows = await sql<{ bucket_ms: bigint; source: string; lines: bigint }[]>`
    SELECT (floor(extract(epoch FROM date_trunc('milliseconds', start_time)) * 1000 / ${widthMs}::bigint) * ${widthMs}::bigint)::bigint AS bucket_ms,
           source, sum(line_count)::bigint AS lines
    FROM log_references
    WHERE session_id = ${q.sessionId}::bigint AND state = 'complete'
      AND date_trunc('milliseconds', start_time) BETWEEN ${utc(sql, q.startMs)} AND ${utc(sql, q.endMs)}
    GROUP BY 1, 2`;
  return rows.map((r) => ({ bucketMs: Number(r.bucket_ms), source: r.source, lines: Number(r.lines) }));
}
