/**
 * The one statement behind SessionViewer.ListSessions: read-only, on the
 * `sessions` table of CONTRACT §3 and nothing else.
 */
import type { Sql } from "./pool.ts";
import { ACTIVE_STATES } from "../events/session-machine.ts";

export interface SessionRow {
  session_id: bigint;
  sgc_id: bigint;
  status: string;
  /** Unix milliseconds; null when the column is NULL. */
  started_at: bigint | null;
  ended_at: bigint | null;
  exit_code: number | null;
  created_at: bigint;
  updated_at: bigint;
}

export interface SessionQuery {
  limit: number;
  /** Empty = every session. */
  sessionIds: bigint[];
}

// The states a session can still leave (CONTRACT §4): listed first.
const ACTIVE = ACTIVE_STATES as string[];

/**
 * Active sessions first, then ended ones, newest (highest id) first in each
 * group. Two bounded halves joined, so the ended half walks the primary key
 * backwards instead of sorting a ManManV2 database's whole history.
 * TIMESTAMP columns hold UTC (they are written with now() on a UTC server,
 * as the deployed services run); epoch of a TIMESTAMP reads it as UTC.
 */
export async function selectViewerSessions(sql: Sql, q: SessionQuery): Promise<SessionRow[]> {
  const ids = q.sessionIds.map(String);
  const all = ids.length === 0;
  return await sql<SessionRow[]>`
    SELECT session_id, sgc_id, status,
           floor(extract(epoch FROM started_at) * 1000)::bigint AS started_at,
           floor(extract(epoch FROM ended_at) * 1000)::bigint AS ended_at,
           exit_code,
           floor(extract(epoch FROM created_at) * 1000)::bigint AS created_at,
           floor(extract(epoch FROM updated_at) * 1000)::bigint AS updated_at
    FROM (
      (SELECT session_id, sgc_id, status, started_at, ended_at, exit_code, created_at, updated_at FROM sessions
        WHERE status = ANY(${sql.array(ACTIVE)}::text[])
          AND (${all}::boolean OR session_id = ANY(${sql.array(ids)}::bigint[]))
        ORDER BY session_id DESC LIMIT ${q.limit})
      UNION ALL
      (SELECT session_id, sgc_id, status, started_at, ended_at, exit_code, created_at, updated_at FROM sessions
        WHERE status <> ALL(${sql.array(ACTIVE)}::text[])
          AND (${all}::boolean OR session_id = ANY(${sql.array(ids)}::bigint[]))
        ORDER BY session_id DESC LIMIT ${q.limit})
    ) s
    ORDER BY status = ANY(${sql.array(ACTIVE)}::text[]) DESC, session_id DESC
    LIMIT ${q.limit}
  `;
}
