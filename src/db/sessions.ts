/**
 * The session status statement: the conditional move (or the keepalive), the
 * superseding of older sessions of the same game server config, the freeing
 * of ended sessions' ports, the timeline rows of every move
 * (processor_session_transitions) and the outbox events, in one statement:
 * a move is never committed without its timeline row and its event. It
 * reports the status it found, so the caller can tell a stale redelivery
 * from a forward skip without a second, racy read.
 *
 * A crashed or lost event carries the session's last log lines (`log_tail`),
 * taken from `logTail` before the statement runs: the outbox body is final
 * once committed.
 */
import type { Sql } from "./pool.ts";
import type { LogTailOf, OutboxEvent, SessionChange, SessionMove } from "../events/store.ts";
import { ACTIVE_STATES, ANNOUNCED_STATES, TAILED_STATES, TERMINAL_STATES, type SessionState } from "../events/session-machine.ts";

export async function moveSession(sql: Sql, m: SessionMove, logTail?: LogTailOf): Promise<SessionChange> {
  const terminal = TERMINAL_STATES.includes(m.to);
  const announce = ANNOUNCED_STATES.includes(m.to);
  const running = m.to === "running";
  const tailed = TAILED_STATES.includes(m.to);
  const tail = tailed ? (logTail?.(m.sessionId) ?? []) : [];
  // sgc_id comes from the row, never from the message (real hosts send 0).
  const [row] = await sql<{ previous: SessionState | null; moved: boolean; kept: boolean; superseded: number[] | null; freed: number; events: OutboxEvent[] }[]>`
    WITH cur AS (
      SELECT session_id, status FROM sessions WHERE session_id = ${m.sessionId} FOR UPDATE
    ), moved AS (
      UPDATE sessions s SET
        status = ${m.to},
        updated_at = now(),
        started_at = CASE WHEN ${running}::boolean THEN now() ELSE s.started_at END,
        ended_at = CASE WHEN ${terminal}::boolean THEN now() ELSE s.ended_at END,
        exit_code = CASE WHEN ${terminal}::boolean THEN ${m.exitCode}::integer ELSE s.exit_code END
      FROM cur
      WHERE s.session_id = cur.session_id AND cur.status = ANY(${sql.array(m.from)}::text[])
      RETURNING s.session_id, s.sgc_id, s.status, s.exit_code
    ), kept AS (
      -- The keepalive: the host repeats "starting" every 5 s while it downloads
      -- addons; refreshing updated_at keeps the stale sweep off the session.
      UPDATE sessions s SET updated_at = now()
      FROM cur
      WHERE s.session_id = cur.session_id AND cur.status = ${m.to} AND NOT ${terminal}::boolean
      RETURNING s.session_id
    ), superseding AS (
      -- Locked first, so the status each one is stopped from (its timeline
      -- row) is the one the UPDATE below changes, even under a concurrent move.
      SELECT o.session_id, o.status, moved.session_id AS by_session_id
      FROM sessions o, moved
      WHERE ${running}::boolean AND o.sgc_id = moved.sgc_id AND o.session_id <> moved.session_id
        AND o.status = ANY(${sql.array(ACTIVE_STATES as SessionState[])}::text[])
      ORDER BY o.session_id
      FOR UPDATE OF o
    ), superseded AS (
      UPDATE sessions o SET status = 'stopped', ended_at = now(), updated_at = now()
      FROM superseding
      WHERE o.session_id = superseding.session_id
      RETURNING o.session_id, o.sgc_id, superseding.status AS previous, superseding.by_session_id
    ), transitions AS (
      INSERT INTO processor_session_transitions (session_id, from_status, to_status, exit_code, routing_key, reason, by_session_id)
      SELECT moved.session_id, cur.status, moved.status, moved.exit_code, ${m.routingKey ?? null}::text, 'message', NULL::bigint
      FROM moved, cur
      UNION ALL
      SELECT session_id, previous, 'stopped', NULL, ${m.routingKey ?? null}::text, 'superseded', by_session_id
      FROM superseded
    ), freed AS (
      DELETE FROM server_ports p
      WHERE p.session_id IN (SELECT session_id FROM moved WHERE ${terminal}::boolean UNION ALL SELECT session_id FROM superseded)
      RETURNING 1
    ), events AS (
      INSERT INTO processor_outbox (routing_key, payload)
      SELECT 'manman.session.' || status,
             jsonb_strip_nulls(jsonb_build_object('session_id', session_id, 'sgc_id', sgc_id, 'status', status, 'exit_code', exit_code))
               || CASE WHEN ${tailed}::boolean THEN jsonb_build_object('log_tail', ${sql.json(tail)}::jsonb) ELSE '{}'::jsonb END
      FROM moved WHERE ${announce}::boolean
      UNION ALL
      SELECT 'manman.session.stopped', jsonb_build_object('session_id', session_id, 'sgc_id', sgc_id, 'status', 'stopped')
      FROM superseded
      RETURNING id, routing_key, payload
    )
    SELECT (SELECT status FROM cur) AS previous,
           EXISTS (SELECT 1 FROM moved) AS moved,
           EXISTS (SELECT 1 FROM kept) AS kept,
           (SELECT array_agg(session_id ORDER BY session_id) FROM superseded) AS superseded,
           (SELECT count(*)::int FROM freed) AS freed,
           COALESCE((SELECT json_agg(events ORDER BY id) FROM events), '[]') AS events`;
  return {
    previousStatus: row!.previous,
    moved: row!.moved,
    keptAlive: row!.kept,
    superseded: (row!.superseded ?? []).map(Number),
    portsFreed: Number(row!.freed),
    events: row!.events,
  };
}
