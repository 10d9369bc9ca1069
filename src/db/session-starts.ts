/**
 * Moves to running in groups (sessions.ts's SessionMoveWriter): for each,
 * the conditional move from a legal predecessor (or the keepalive), the
 * stopping of every other active session of its game server config (locked
 * first, in id order), their timeline rows, their freed ports and the
 * events, in one statement.
 *
 * Two sessions of one config in a group would stop each other, and a row is
 * changed at most once by a statement: such a group fails (a division by
 * zero, on purpose) before it changes anything, and groups.ts runs each
 * move alone. A real fleet starts one session of a config at a time.
 */
import type { Sql } from "./pool.ts";
import type { OutboxEvent, SessionChange, SessionMove } from "../events/store.ts";
import { ACTIVE_STATES, type SessionState } from "../events/session-machine.ts";

export async function moveToRunning(sql: Sql, moves: SessionMove[]): Promise<Map<number, SessionChange>> {
  const rows = await sql<{ session_id: string; previous: SessionState | null; moved: boolean; kept: boolean; superseded: number[] | null; freed: number; events: OutboxEvent[] }[]>`
    WITH input AS (
      SELECT * FROM unnest(
        ${sql.array(moves.map((m) => m.sessionId))}::bigint[], ${sql.array(moves.map((m) => m.from.join(",")))}::text[],
        ${sql.array(moves.map((m) => m.routingKey ?? null) as string[])}::text[]
      ) AS i(session_id, from_list, routing_key)
    ), cur AS (
      SELECT session_id, status, sgc_id FROM sessions WHERE session_id IN (SELECT session_id FROM input)
      ORDER BY session_id FOR UPDATE
    ), one_per_config AS (
      -- The zero is an aggregate, so the planner cannot fold the division
      -- into an error for every group; only a group that has two fails.
      SELECT CASE WHEN count(DISTINCT sgc_id) < count(sgc_id) THEN 1 / (count(*) - count(*)) ELSE 0 END AS ok FROM cur
    ), moved AS (
      UPDATE sessions s SET status = 'running', updated_at = now(), started_at = now()
      FROM cur JOIN input i ON i.session_id = cur.session_id
      WHERE s.session_id = cur.session_id AND cur.status = ANY(string_to_array(i.from_list, ','))
        AND (SELECT ok FROM one_per_config) = 0
      RETURNING s.session_id, s.sgc_id, s.status, s.exit_code, cur.status AS previous, i.routing_key
    ), kept AS (
      UPDATE sessions s SET updated_at = now()
      FROM cur
      WHERE s.session_id = cur.session_id AND cur.status = 'running' AND (SELECT ok FROM one_per_config) = 0
      RETURNING s.session_id
    ), superseding AS (
      SELECT o.session_id, o.status, moved.session_id AS by_session_id, moved.routing_key
      FROM sessions o, moved
      WHERE o.sgc_id = moved.sgc_id AND o.session_id <> moved.session_id
        AND o.status = ANY(${sql.array(ACTIVE_STATES as SessionState[])}::text[])
      ORDER BY o.session_id
      FOR UPDATE OF o
    ), superseded AS (
      UPDATE sessions o SET status = 'stopped', ended_at = now(), updated_at = now()
      FROM superseding
      WHERE o.session_id = superseding.session_id
      RETURNING o.session_id, o.sgc_id, superseding.status AS previous, superseding.by_session_id, superseding.routing_key
    ), transitions AS (
      INSERT INTO processor_session_transitions (session_id, from_status, to_status, exit_code, routing_key, reason, by_session_id)
      SELECT session_id, previous, status, exit_code, routing_key, 'message', NULL::bigint FROM moved
      UNION ALL
      SELECT session_id, previous, 'stopped', NULL, routing_key, 'superseded', by_session_id FROM superseded
    ), freed AS (
      DELETE FROM server_ports p USING superseded x WHERE p.session_id = x.session_id
      RETURNING x.by_session_id
    ), events AS (
      INSERT INTO processor_outbox (routing_key, payload)
      SELECT 'manman.session.' || status,
             jsonb_strip_nulls(jsonb_build_object('session_id', session_id, 'sgc_id', sgc_id, 'status', status, 'exit_code', exit_code))
      FROM moved
      UNION ALL
      SELECT 'manman.session.stopped', jsonb_build_object('session_id', session_id, 'sgc_id', sgc_id, 'status', 'stopped')
      FROM superseded
      RETURNING id, routing_key, payload
    )
    SELECT i.session_id, cur.status AS previous,
           EXISTS (SELECT 1 FROM moved m WHERE m.session_id = i.session_id) AS moved,
           EXISTS (SELECT 1 FROM kept k WHERE k.session_id = i.session_id) AS kept,
           (SELECT array_agg(x.session_id ORDER BY x.session_id) FROM superseded x WHERE x.by_session_id = i.session_id) AS superseded,
           (SELECT count(*)::int FROM freed f WHERE f.by_session_id = i.session_id) AS freed,
           COALESCE((SELECT json_agg(e ORDER BY e.id) FROM events e
                     WHERE (e.payload->>'session_id')::bigint = i.session_id
                        OR (e.payload->>'session_id')::bigint IN (SELECT x.session_id FROM superseded x WHERE x.by_session_id = i.session_id)), '[]') AS events,
           (SELECT ok FROM one_per_config) AS ok
    FROM input i LEFT JOIN cur ON cur.session_id = i.session_id`;
  const out = new Map<number, SessionChange>();
  for (const r of rows) {
    out.set(Number(r.session_id), {
      previousStatus: r.previous, moved: r.moved, keptAlive: r.kept,
      superseded: (r.superseded ?? []).map(Number), portsFreed: Number(r.freed), events: r.events,
    });
  }
  return out;
}
