/**
 * The stale sweeps: each one atomic UPDATE … RETURNING that also writes its
 * events to the outbox. Candidates are locked in id order, the order a
 * heartbeat group locks in too, so the two never deadlock, and with SKIP
 * LOCKED: a row a message holds is left for the next sweep, a second later,
 * instead of the sweep waiting behind it. A heartbeat that committed first
 * wins (the lock re-reads last_seen and the row no longer qualifies); one
 * that comes after brings the host back online. Replicas sweeping together never claim
 * the same row twice, so an event is never announced twice. A lost session's
 * ports are freed in the same statement, so the next start of its game
 * server config does not conflict with them. Each session marked lost gets
 * its timeline row (processor_session_transitions) in the same statement.
 */
import type { Sql } from "./pool.ts";
import type { LogTailOf, OutboxEvent } from "../events/store.ts";
import { STALE_CANDIDATE_STATES } from "../events/session-machine.ts";

export async function sweepStaleHosts(sql: Sql, thresholdSeconds: number): Promise<OutboxEvent[]> {
  const [row] = await sql<{ events: OutboxEvent[] }[]>`
    WITH silent AS (
      SELECT server_id FROM servers
      WHERE status = 'online' AND last_seen < now() - make_interval(secs => ${thresholdSeconds})
      ORDER BY server_id FOR UPDATE SKIP LOCKED
    ), stale AS (
      UPDATE servers s SET status = 'offline', updated_at = now()
      FROM silent WHERE s.server_id = silent.server_id
      RETURNING s.server_id
    ), events AS (
      INSERT INTO processor_outbox (routing_key, payload)
      SELECT 'manman.host.stale', jsonb_build_object('server_id', server_id, 'status', 'offline') FROM stale
      RETURNING id, routing_key, payload
    )
    SELECT COALESCE((SELECT json_agg(events ORDER BY id) FROM events), '[]') AS events`;
  return row!.events;
}

/**
 * Stuck sessions → lost, each with its timeline row and its event (whose
 * `log_tail` is the session's last lines, from `logTail`). The tails are
 * taken before the statement, so it first reads which sessions are stuck
 * (no lock) and then sweeps only those: one that becomes stuck in between
 * is swept a second later, and none is announced without its tail.
 */
export async function sweepStaleSessions(sql: Sql, thresholdSeconds: number, logTail?: LogTailOf): Promise<OutboxEvent[]> {
  const stuck = await sql<{ session_id: string }[]>`
    SELECT session_id FROM sessions
    WHERE status = ANY(${sql.array(STALE_CANDIDATE_STATES as string[])}::text[])
      AND updated_at < now() - make_interval(secs => ${thresholdSeconds})`;
  if (stuck.length === 0) return [];
  const ids = stuck.map((r) => Number(r.session_id));
  const tails: Record<string, string[]> = {};
  for (const id of ids) tails[id] = logTail?.(id) ?? [];
  const [row] = await sql<{ events: OutboxEvent[] }[]>`
    WITH stuck AS (
      SELECT session_id, status FROM sessions
      WHERE session_id = ANY(${sql.array(ids)}::bigint[])
        AND status = ANY(${sql.array(STALE_CANDIDATE_STATES as string[])}::text[])
        AND updated_at < now() - make_interval(secs => ${thresholdSeconds})
      ORDER BY session_id FOR UPDATE SKIP LOCKED
    ), lost AS (
      UPDATE sessions s SET status = 'lost', ended_at = now(), updated_at = now()
      FROM stuck WHERE s.session_id = stuck.session_id
      RETURNING s.session_id, s.sgc_id, stuck.status AS previous
    ), transitions AS (
      INSERT INTO processor_session_transitions (session_id, from_status, to_status, reason)
      SELECT session_id, previous, 'lost', 'stale_sweep' FROM lost
    ), freed AS (
      DELETE FROM server_ports WHERE session_id IN (SELECT session_id FROM lost)
    ), events AS (
      INSERT INTO processor_outbox (routing_key, payload)
      SELECT 'manman.session.lost',
             jsonb_build_object('session_id', session_id, 'sgc_id', sgc_id, 'status', 'lost',
                                'log_tail', COALESCE(${sql.json(tails)}::jsonb -> session_id::text, '[]'::jsonb))
      FROM lost
      RETURNING id, routing_key, payload
    )
    SELECT COALESCE((SELECT json_agg(events ORDER BY id) FROM events), '[]') AS events`;
  return row!.events;
}
