/**
 * The host status statement (heartbeats, written in groups, are in
 * heartbeats.ts). Status messages are written in groups too (groups.ts):
 * every one that arrives within a turn of the event loop goes into one
 * statement, each server's change and its outbox event committed together,
 * and the row locks it takes (in id order) order it against the stale sweep,
 * heartbeat groups and other replicas.
 */
import type { Sql } from "./pool.ts";
import type { HostChange, OutboxEvent } from "../events/store.ts";
import { GroupWriter } from "./groups.ts";

export type HostStatus = "online" | "offline";

export class HostStatusWriter {
  private readonly writer: GroupWriter<{ serverId: number; status: HostStatus }, HostChange>;

  constructor(sql: Sql) {
    this.writer = new GroupWriter({ run: (changes) => setHostStatuses(sql, changes), missing: () => ({ found: false, previousStatus: null, events: [] }) });
  }

  set(serverId: number, status: HostStatus): Promise<HostChange> {
    return this.writer.write(serverId, { serverId, status });
  }
}

/** Status from host managers: set each, stamp last_seen, announce each. One server at most once. */
export async function setHostStatuses(sql: Sql, changes: { serverId: number; status: HostStatus }[]): Promise<Map<number, HostChange>> {
  const [row] = await sql<{ found: { server_id: number; previous: string }[] | null; events: OutboxEvent[] | null }[]>`
    WITH input AS (
      SELECT * FROM unnest(${sql.array(changes.map((c) => c.serverId))}::bigint[], ${sql.array(changes.map((c) => c.status))}::text[]) AS i(server_id, status)
    ), cur AS (
      SELECT s.server_id, s.status FROM servers s JOIN input i ON i.server_id = s.server_id
      ORDER BY s.server_id FOR UPDATE OF s
    ), changed AS (
      UPDATE servers s SET status = i.status, last_seen = now(), updated_at = now()
      FROM cur JOIN input i ON i.server_id = cur.server_id
      WHERE s.server_id = cur.server_id
      RETURNING s.server_id, i.status
    ), events AS (
      INSERT INTO processor_outbox (routing_key, payload)
      SELECT 'manman.host.' || status, jsonb_build_object('server_id', server_id, 'status', status)
      FROM changed ORDER BY server_id
      RETURNING id, routing_key, payload
    )
    SELECT (SELECT json_agg(json_build_object('server_id', server_id, 'previous', status)) FROM cur) AS found,
           (SELECT json_agg(events ORDER BY id) FROM events) AS events`;
  return hostChanges(row!.found, row!.events);
}

/** Each server the statement found, with the status it had and its events (heartbeats.ts reads its groups so too). */
export function hostChanges(found: { server_id: number; previous: string }[] | null, events: OutboxEvent[] | null): Map<number, HostChange> {
  const out = new Map<number, HostChange>();
  for (const f of found ?? []) out.set(Number(f.server_id), { found: true, previousStatus: f.previous, events: [] });
  for (const e of events ?? []) out.get(Number(e.payload.server_id))?.events.push(e);
  return out;
}
