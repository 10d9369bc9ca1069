/**
 * Heartbeats in groups (groups.ts): every heartbeat that arrives within one
 * turn of the event loop is written by one statement. Heartbeats are most of
 * the traffic (every host, every 5 s), and a commit per heartbeat is what
 * limits throughput.
 */
import type { Sql } from "./pool.ts";
import type { HostChange, OutboxEvent } from "../events/store.ts";
import { GroupWriter } from "./groups.ts";
import { hostChanges } from "./hosts.ts";

export class HeartbeatWriter {
  private readonly writer: GroupWriter<number, HostChange>;

  constructor(sql: Sql) {
    this.writer = new GroupWriter({ run: (ids) => recordHeartbeats(sql, ids), missing: () => ({ found: false, previousStatus: null, events: [] }) });
  }

  record(serverId: number): Promise<HostChange> {
    return this.writer.write(serverId, serverId);
  }
}

/**
 * Stamps last_seen on every listed server; those that were not online come
 * back online, announced. Rows are locked in id order so two groups (or a
 * group and the stale sweep) cannot deadlock each other.
 */
export async function recordHeartbeats(sql: Sql, serverIds: number[]): Promise<Map<number, HostChange>> {
  const [row] = await sql<{ seen: { server_id: number; previous: string }[] | null; events: OutboxEvent[] | null }[]>`
    WITH cur AS (
      SELECT server_id, status FROM servers
      WHERE server_id = ANY(${sql.array(serverIds)}::bigint[])
      ORDER BY server_id FOR UPDATE
    ), seen AS (
      UPDATE servers s SET last_seen = now(), status = 'online',
        updated_at = CASE WHEN cur.status <> 'online' THEN now() ELSE s.updated_at END
      FROM cur WHERE s.server_id = cur.server_id
      RETURNING s.server_id, cur.status AS previous
    ), events AS (
      INSERT INTO processor_outbox (routing_key, payload)
      SELECT 'manman.host.online', jsonb_build_object('server_id', server_id, 'status', 'online')
      FROM seen WHERE previous <> 'online'
      RETURNING id, routing_key, payload
    )
    SELECT (SELECT json_agg(json_build_object('server_id', server_id, 'previous', previous)) FROM seen) AS seen,
           (SELECT json_agg(events ORDER BY id) FROM events) AS events`;
  return hostChanges(row!.seen, row!.events);
}
