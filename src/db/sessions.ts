/**
 * The session status statements: the conditional move (or the keepalive),
 * the freeing of ended sessions' ports, the timeline row of every move
 * (processor_session_transitions) and the outbox events, in one statement:
 * a move is never committed without its timeline row and its event. Moves
 * are written in groups (groups.ts), each row's outcome decided by its own
 * conditions; moves to running, which also stop the other sessions of their
 * game server config, are in session-starts.ts. Each statement reports the
 * status it found, so the caller can tell a stale redelivery from a forward
 * skip without a second, racy read.
 *
 * A crashed or lost event carries the session's last log lines (`log_tail`),
 * taken from `logTail` before the statement runs: the outbox body is final
 * once committed.
 */
import type { Sql } from "./pool.ts";
import { GroupWriter } from "./groups.ts";
import { moveToRunning } from "./session-starts.ts";
import type { LogTailOf, OutboxEvent, SessionChange, SessionMove } from "../events/store.ts";
import { ANNOUNCED_STATES, TAILED_STATES, TERMINAL_STATES, type SessionState } from "../events/session-machine.ts";

/**
 * Session moves in groups (groups.ts): the moves that arrive within one turn
 * of the event loop are written by one statement, each row's outcome decided
 * by its own conditions. Moves to running go in
 * groups of their own (moveToRunning): they stop the other sessions of their
 * config, and a row is changed at most once by a statement.
 */
export class SessionMoveWriter {
  private readonly others: GroupWriter<GroupedMove, SessionChange>;
  private readonly running: GroupWriter<GroupedMove, SessionChange>;

  constructor(
    sql: Sql,
    private readonly logTail?: LogTailOf,
  ) {
    this.others = new GroupWriter({ run: (moves) => moveSessions(sql, moves), missing: () => notFound() });
    this.running = new GroupWriter({ run: (moves) => moveToRunning(sql, moves), missing: () => notFound() });
  }

  move(m: SessionMove): Promise<SessionChange> {
    // Taken now, before the statement: the outbox body is final once committed.
    const tail = TAILED_STATES.includes(m.to) ? (this.logTail?.(m.sessionId) ?? []) : [];
    return (m.to === "running" ? this.running : this.others).write(m.sessionId, { ...m, tail });
  }
}

type GroupedMove = SessionMove & { tail: string[] };

const notFound = (): SessionChange => ({ previousStatus: null, moved: false, keptAlive: false, superseded: [], portsFreed: 0, events: [] });

/**
 * Moves of distinct sessions, none to running (no superseding), as one
 * statement: for each, the conditional move or keepalive, its timeline row,
 * its freed ports and its outbox event. Rows are locked in id
 * order so two statements cannot deadlock each other.
 */
export async function moveSessions(sql: Sql, moves: GroupedMove[]): Promise<Map<number, SessionChange>> {
  const col = <T>(f: (m: GroupedMove) => T) => moves.map(f);
  const rows = await sql<{ session_id: string; previous: SessionState | null; moved: boolean; kept: boolean; freed: number; events: OutboxEvent[] }[]>`
    WITH input AS (
      SELECT * FROM unnest(
        ${sql.array(col((m) => m.sessionId))}::bigint[], ${sql.array(col((m) => m.to))}::text[],
        ${sql.array(col((m) => m.exitCode) as number[])}::integer[], ${sql.array(col((m) => m.from.join(",")))}::text[],
        ${sql.array(col((m) => m.routingKey ?? null) as string[])}::text[], ${sql.array(col((m) => JSON.stringify(m.tail)))}::text[]
      ) AS i(session_id, to_status, exit_code, from_list, routing_key, tail)
    ), cur AS (
      SELECT session_id, status FROM sessions WHERE session_id IN (SELECT session_id FROM input)
      ORDER BY session_id FOR UPDATE
    ), moved AS (
      UPDATE sessions s SET
        status = i.to_status,
        updated_at = now(),
        ended_at = CASE WHEN i.to_status = ANY(${sql.array(TERMINAL_STATES as SessionState[])}::text[]) THEN now() ELSE s.ended_at END,
        exit_code = CASE WHEN i.to_status = ANY(${sql.array(TERMINAL_STATES as SessionState[])}::text[]) THEN i.exit_code ELSE s.exit_code END
      FROM cur JOIN input i ON i.session_id = cur.session_id
      WHERE s.session_id = cur.session_id AND cur.status = ANY(string_to_array(i.from_list, ','))
      RETURNING s.session_id, s.sgc_id, s.status, s.exit_code, cur.status AS previous, i.routing_key, i.tail
    ), kept AS (
      UPDATE sessions s SET updated_at = now()
      FROM cur JOIN input i ON i.session_id = cur.session_id
      WHERE s.session_id = cur.session_id AND cur.status = i.to_status
        AND NOT i.to_status = ANY(${sql.array(TERMINAL_STATES as SessionState[])}::text[])
      RETURNING s.session_id
    ), transitions AS (
      INSERT INTO processor_session_transitions (session_id, from_status, to_status, exit_code, routing_key, reason, by_session_id)
      SELECT session_id, previous, status, exit_code, routing_key, 'message', NULL::bigint FROM moved
    ), freed AS (
      DELETE FROM server_ports p USING moved m
      WHERE p.session_id = m.session_id AND m.status = ANY(${sql.array(TERMINAL_STATES as SessionState[])}::text[])
      RETURNING p.session_id
    ), events AS (
      INSERT INTO processor_outbox (routing_key, payload)
      SELECT 'manman.session.' || status,
             jsonb_strip_nulls(jsonb_build_object('session_id', session_id, 'sgc_id', sgc_id, 'status', status, 'exit_code', exit_code))
               || CASE WHEN status = ANY(${sql.array(TAILED_STATES as SessionState[])}::text[]) THEN jsonb_build_object('log_tail', tail::jsonb) ELSE '{}'::jsonb END
      FROM moved WHERE status = ANY(${sql.array(ANNOUNCED_STATES as SessionState[])}::text[])
      ORDER BY session_id
      RETURNING id, routing_key, payload
    )
    SELECT i.session_id, cur.status AS previous,
           EXISTS (SELECT 1 FROM moved m WHERE m.session_id = i.session_id) AS moved,
           EXISTS (SELECT 1 FROM kept k WHERE k.session_id = i.session_id) AS kept,
           (SELECT count(*)::int FROM freed f WHERE f.session_id = i.session_id) AS freed,
           COALESCE((SELECT json_agg(e ORDER BY e.id) FROM events e WHERE (e.payload->>'session_id')::bigint = i.session_id), '[]') AS events
    FROM input i LEFT JOIN cur ON cur.session_id = i.session_id`;
  const out = new Map<number, SessionChange>();
  for (const r of rows) {
    out.set(Number(r.session_id), { previousStatus: r.previous, moved: r.moved, keptAlive: r.kept, superseded: [], portsFreed: Number(r.freed), events: r.events });
  }
  return out;
}
