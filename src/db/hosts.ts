/**
 * The host status statement (heartbeats, written in groups, are in
 * heartbeats.ts). The change and its outbox event commit together, and the
 * row lock it takes orders it against the stale sweep and other replicas.
 */
import type { Sql } from "./pool.ts";
import type { HostChange, OutboxEvent } from "../events/store.ts";

/** Status from the host manager: set it, stamp last_seen, announce it. */
export async function setHostStatus(sql: Sql, serverId: number, status: "online" | "offline"): Promise<HostChange> {
  const [row] = await sql<{ previous: string | null; events: OutboxEvent[] }[]>`
    WITH cur AS (
      SELECT server_id, status FROM servers WHERE server_id = ${serverId} FOR UPDATE
    ), changed AS (
      UPDATE servers s SET status = ${status}, last_seen = now(), updated_at = now()
      FROM cur WHERE s.server_id = cur.server_id
      RETURNING s.server_id
    ), events AS (
      INSERT INTO processor_outbox (routing_key, payload)
      SELECT 'manman.host.' || ${status}::text, jsonb_build_object('server_id', server_id, 'status', ${status}::text)
      FROM changed
      RETURNING id, routing_key, payload
    )
    SELECT (SELECT status FROM cur) AS previous,
           COALESCE((SELECT json_agg(events ORDER BY id) FROM events), '[]') AS events`;
  return { found: row!.previous !== null, previousStatus: row!.previous, events: row!.events };
}
