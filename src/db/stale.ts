/**
 * The stale sweeps: each one atomic UPDATE … RETURNING that also writes its
 * events to the outbox. Row locks make a racing heartbeat either win (the
 * sweep re-checks last_seen after the lock and skips the row) or come after
 * (and bring the host back online). Replicas sweeping together never claim
 * the same row twice, so an event is never announced twice. A lost session's
 * ports are freed in the same statement, so the next start of its game
 * server config does not conflict with them.
 */
import type { Sql } from "./pool.ts";
import type { OutboxEvent } from "../events/store.ts";
import { STALE_CANDIDATE_STATES } from "../events/session-machine.ts";

export async function sweepStaleHosts(sql: Sql, thresholdSeconds: number): Promise<OutboxEvent[]> {
  const [row] = await sql<{ events: OutboxEvent[] }[]>`
    WITH stale AS (
      UPDATE servers SET status = 'offline', updated_at = now()
      WHERE status = 'online' AND last_seen < now() - make_interval(secs => ${thresholdSeconds})
      RETURNING server_id
    ), events AS (
      INSERT INTO processor_outbox (routing_key, payload)
      SELECT 'manman.host.stale', jsonb_build_object('server_id', server_id, 'status', 'offline') FROM stale
      RETURNING id, routing_key, payload
    )
    SELECT COALESCE((SELECT json_agg(events ORDER BY id) FROM events), '[]') AS events`;
  return row!.events;
}

export async function sweepStaleSessions(sql: Sql, thresholdSeconds: number): Promise<OutboxEvent[]> {
  const [row] = await sql<{ events: OutboxEvent[] }[]>`
    WITH lost AS (
      UPDATE sessions SET status = 'lost', ended_at = now(), updated_at = now()
      WHERE status = ANY(${sql.array(STALE_CANDIDATE_STATES as string[])}::text[])
        AND updated_at < now() - make_interval(secs => ${thresholdSeconds})
      RETURNING session_id, sgc_id
    ), freed AS (
      DELETE FROM server_ports WHERE session_id IN (SELECT session_id FROM lost)
    ), events AS (
      INSERT INTO processor_outbox (routing_key, payload)
      SELECT 'manman.session.lost', jsonb_build_object('session_id', session_id, 'sgc_id', sgc_id, 'status', 'lost') FROM lost
      RETURNING id, routing_key, payload
    )
    SELECT COALESCE((SELECT json_agg(events ORDER BY id) FROM events), '[]') AS events`;
  return row!.events;
}
