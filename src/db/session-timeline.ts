/**
 * The one statement behind SessionTimeline.GetSessionTimeline: a session's
 * rows of processor_session_transitions (written by sessions.ts and
 * stale.ts with each move), oldest first, read by the (session_id, at, id)
 * index.
 */
import type { Sql } from "./pool.ts";

export interface TransitionRow {
  /** Unix milliseconds. */
  at: bigint;
  from_status: string;
  to_status: string;
  exit_code: number | null;
  reason: string;
  routing_key: string | null;
  by_session_id: bigint | null;
}

export async function selectSessionTimeline(sql: Sql, sessionId: bigint, limit: number): Promise<TransitionRow[]> {
  return await sql<TransitionRow[]>`
    SELECT floor(extract(epoch FROM at) * 1000)::bigint AS at, from_status, to_status, exit_code, reason, routing_key, by_session_id
    FROM processor_session_transitions
    WHERE session_id = ${String(sessionId)}::bigint
    ORDER BY at, id
    LIMIT ${limit}`;
}
