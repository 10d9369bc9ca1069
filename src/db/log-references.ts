/**
 * The log archive's statements (issue 10, CONTRACT §6): `log_references`
 * rows exactly as the ManManV2 API reads them, the part claims of
 * processor_log_archive_parts, and the sessions the archive looks up. One
 * statement per function, no transactions (postgres.js on Bun crashes when a
 * transaction's socket dies, PITFALLS), every value a bind parameter.
 *
 * Times. The columns are TIMESTAMP (no zone) holding UTC, as upstream writes
 * them. Values go in as Unix milliseconds turned into a timestamp by integer
 * arithmetic on the server (`utc(ms)`), so neither the session's TimeZone
 * nor float rounding can shift them, and `created_at` is written as
 * `now() AT TIME ZONE 'UTC'` rather than the column's CURRENT_TIMESTAMP
 * default, which is local time on a server not set to UTC.
 *
 * States. `pending` while an object is being written, `complete` once it is
 * stored (the only rows the API reads), and `deleting` for rows being
 * removed with their object (crash leftovers, retention): marked first, so
 * the API stops reading a row before its object goes, and a removal cut
 * short by a crash is found again and finished.
 */
import type { Sql } from "./pool.ts";

/** A UTC TIMESTAMP from Unix ms, exact for years 0000-9999 (whole days times an interval, then the rest). */
const utc = (sql: Sql, ms: number) =>
  sql`(timestamp 'epoch' + (${ms}::bigint / 86400000) * interval '1 day' + (${ms}::bigint % 86400000) * interval '1 millisecond')`;
const nowUtc = (sql: Sql) => sql`(now() AT TIME ZONE 'UTC')`;

export interface SessionFacts {
  sessionId: number;
  sgcId: number;
  status: string;
}

/** sgc_id and status of those of `ids` that exist. */
export async function selectSessionFacts(sql: Sql, ids: readonly number[]): Promise<SessionFacts[]> {
  if (ids.length === 0) return [];
  const rows = await sql<{ session_id: bigint; sgc_id: bigint; status: string }[]>`
    SELECT session_id, sgc_id, status FROM sessions WHERE session_id = ANY(${sql.array(ids as number[])}::bigint[])`;
  return rows.map((r) => ({ sessionId: Number(r.session_id), sgcId: Number(r.sgc_id), status: r.status }));
}

export interface MinuteOf {
  sessionId: number;
  sgcId: number;
  /** Unix ms of the minute's start. */
  minuteMs: number;
}

export interface NewReference extends MinuteOf {
  /**
   * The file_path of the minute's first object is `pathHead + pathTail`;
   * part n ≥ 1's is `pathHead + "." + n + pathTail` (logs/archive/keys.ts).
   */
  pathHead: string;
  pathTail: string;
  /** First and last line's time, Unix ms. */
  startMs: number;
  endMs: number;
  lineCount: number;
  source: string;
}

export interface ClaimedReference {
  part: number;
  logId: number;
  filePath: string;
}

/**
 * Claims the next part number of a (session, minute) and inserts its
 * object's `pending` row, in one statement (one round trip per object
 * instead of two; an atomic statement, so a refused row, say a session
 * gone (foreign key), gives its claim back too).
 *
 * Parts are unique across replicas (migration 0004): the claim is an
 * INSERT … ON CONFLICT DO UPDATE that the primary key serialises. The first
 * claim of a minute starts after the rows the minute already has
 * (upstream's, or ours from before the claim row was pruned), so it does not
 * aim at a key that is likely taken; the writer still treats a taken key as
 * a reason to claim again.
 *
 * Not idempotent: run again after its answer was lost, it claims another
 * part and inserts another row. The first row (if it committed) names an
 * object nobody writes; it stays `pending`, which the API never reads, until
 * the crash-leftover sweep removes it (archive-maintenance.ts).
 */
export async function insertPendingReference(sql: Sql, r: NewReference): Promise<ClaimedReference> {
  const minute = utc(sql, r.minuteMs);
  const [row] = await sql<{ part: number; log_id: bigint; file_path: string }[]>`
    WITH claimed AS (
      INSERT INTO processor_log_archive_parts AS p (session_id, minute_timestamp, parts)
      VALUES (${r.sessionId}::bigint, ${minute},
              1 + (SELECT count(*) FROM log_references
                   WHERE sgc_id = ${r.sgcId}::bigint AND minute_timestamp = ${minute} AND session_id = ${r.sessionId}::bigint))
      ON CONFLICT (session_id, minute_timestamp) DO UPDATE SET parts = p.parts + 1
      RETURNING p.parts - 1 AS part
    ), inserted AS (
      INSERT INTO log_references (session_id, sgc_id, file_path, start_time, end_time, line_count, source, minute_timestamp, state, created_at)
      SELECT ${r.sessionId}::bigint, ${r.sgcId}::bigint,
             ${r.pathHead}::text || CASE WHEN part = 0 THEN '' ELSE '.' || part END || ${r.pathTail}::text,
             ${utc(sql, r.startMs)}, ${utc(sql, r.endMs)}, ${r.lineCount}::int, ${r.source}, ${minute}, 'pending', ${nowUtc(sql)}
      FROM claimed
      RETURNING log_id, file_path
    )
    SELECT claimed.part, inserted.log_id, inserted.file_path FROM claimed, inserted`;
  return { part: Number(row!.part), logId: Number(row!.log_id), filePath: row!.file_path };
}

/**
 * pending → complete. False when the row is gone or being removed (another
 * replica took it for a crash leftover): the writer then writes the lines
 * again under a new part. Idempotent: a row already complete stays so.
 */
export async function completeReference(sql: Sql, logId: number): Promise<boolean> {
  const rows = await sql`
    UPDATE log_references SET state = 'complete'
    WHERE log_id = ${logId}::bigint AND state IN ('pending', 'complete')
    RETURNING log_id`;
  return rows.length > 0;
}

/** Removes this writer's own pending row (its key turned out taken, or its lines were given back). */
export async function deletePendingReference(sql: Sql, logId: number): Promise<boolean> {
  const rows = await sql`DELETE FROM log_references WHERE log_id = ${logId}::bigint AND state = 'pending' RETURNING log_id`;
  return rows.length > 0;
}

/** file_paths of the complete objects of a (session, minute): where redelivered lines may already be. */
export async function selectCompletePaths(sql: Sql, m: MinuteOf): Promise<string[]> {
  const rows = await sql<{ file_path: string }[]>`
    SELECT file_path FROM log_references
    WHERE sgc_id = ${m.sgcId}::bigint AND minute_timestamp = ${utc(sql, m.minuteMs)} AND session_id = ${m.sessionId}::bigint
      AND state = 'complete'
    ORDER BY log_id`;
  return rows.map((r) => r.file_path);
}

export interface DoomedReference {
  logId: number;
  sessionId: number;
  filePath: string;
}

type DoomedRow = { log_id: bigint; session_id: bigint; file_path: string };
const doomed = (rows: DoomedRow[]): DoomedReference[] => rows.map((r) => ({ logId: Number(r.log_id), sessionId: Number(r.session_id), filePath: r.file_path }));

/**
 * Marks `deleting` (and returns) up to `limit` rows of this store
 * (file_path starting with `pathPrefix`) that are `pending` or `deleting`
 * and were created more than `leaseSeconds` ago: writes a crash cut short,
 * and removals a crash cut short. SKIP LOCKED: replicas take disjoint rows.
 */
export async function markStaleReferences(sql: Sql, pathPrefix: string, leaseSeconds: number, limit: number): Promise<DoomedReference[]> {
  const rows = await sql<DoomedRow[]>`
    UPDATE log_references r SET state = 'deleting'
    FROM (
      SELECT log_id FROM log_references
      WHERE state IN ('pending', 'deleting') AND created_at < ${nowUtc(sql)} - make_interval(secs => ${leaseSeconds})
        AND starts_with(file_path, ${pathPrefix})
      ORDER BY log_id LIMIT ${limit}
      FOR UPDATE SKIP LOCKED
    ) due
    WHERE r.log_id = due.log_id
    RETURNING r.log_id, r.session_id, r.file_path`;
  return doomed(rows);
}

/**
 * Marks `deleting` (and returns) up to `limit` rows of this store whose
 * lines began more than `days` days ago (retention), oldest first; pending
 * rows are left to markStaleReferences. start_time has an index; rows that
 * share one upstream object (its APPENDED rewrites) all began in that
 * object's minute, so they go in the same or the next run.
 */
export async function markExpiredReferences(sql: Sql, pathPrefix: string, days: number, limit: number): Promise<DoomedReference[]> {
  const rows = await sql<DoomedRow[]>`
    UPDATE log_references r SET state = 'deleting'
    FROM (
      SELECT log_id FROM log_references
      WHERE start_time < ${nowUtc(sql)} - make_interval(days => ${days})
        AND (state IS NULL OR state <> 'pending')
        AND starts_with(file_path, ${pathPrefix})
      ORDER BY start_time LIMIT ${limit}
      FOR UPDATE SKIP LOCKED
    ) due
    WHERE r.log_id = due.log_id
    RETURNING r.log_id, r.session_id, r.file_path`;
  return doomed(rows);
}

/** True while a row not being removed still names the object (upstream let several rows share one). */
export async function isPathInUse(sql: Sql, sessionId: number, filePath: string): Promise<boolean> {
  const [row] = await sql<{ used: boolean }[]>`
    SELECT EXISTS (
      SELECT 1 FROM log_references
      WHERE session_id = ${sessionId}::bigint AND file_path = ${filePath} AND state IS DISTINCT FROM 'deleting'
    ) AS used`;
  return row!.used;
}

/** Deletes rows marked `deleting` (their objects are gone); the count. */
export async function deleteMarkedReferences(sql: Sql, logIds: readonly number[]): Promise<number> {
  if (logIds.length === 0) return 0;
  const rows = await sql`
    DELETE FROM log_references WHERE log_id = ANY(${sql.array(logIds as number[])}::bigint[]) AND state = 'deleting'
    RETURNING log_id`;
  return rows.length;
}

/** Forgets part counters of minutes older than `olderThanSeconds` (insertPendingReference starts a pruned minute after its rows). */
export async function pruneParts(sql: Sql, olderThanSeconds: number): Promise<number> {
  const result = await sql`
    DELETE FROM processor_log_archive_parts
    WHERE minute_timestamp < ${nowUtc(sql)} - make_interval(secs => ${olderThanSeconds})`;
  return result.count;
}
