/**
 * Heartbeats in groups: every heartbeat that arrives within one turn of the
 * event loop is written by one statement (one transaction, one WAL flush)
 * instead of one each. Heartbeats are most of the traffic (every host, every
 * 5 s), and a commit per heartbeat is what limits throughput. Callers still
 * get their own answer, and only after the group has committed, so
 * per-server ordering (the consumer's keyed queue) is untouched.
 */
import type { Sql } from "./pool.ts";
import type { HostChange, OutboxEvent } from "../events/store.ts";

// 1,000 ids per statement keeps one statement well under a millisecond of
// planning and a few KB of parameters; larger groups gain nothing measurable.
const MAX_GROUP = 1000;

interface Waiter {
  serverId: number;
  resolve(change: HostChange): void;
  reject(err: unknown): void;
}

export class HeartbeatWriter {
  private group: Waiter[] = [];
  private scheduled = false;

  constructor(private readonly sql: Sql) {}

  record(serverId: number): Promise<HostChange> {
    return new Promise((resolve, reject) => {
      this.group.push({ serverId, resolve, reject });
      if (this.group.length >= MAX_GROUP) this.flush();
      else if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    const group = this.group;
    this.group = [];
    if (group.length === 0) return;
    const ids = [...new Set(group.map((w) => w.serverId))];
    recordHeartbeats(this.sql, ids).then(
      (changes) => answer(group, changes),
      (err) => {
        if (ids.length === 1) for (const w of group) w.reject(err);
        // One row's trouble (a lock held past the statement timeout) failed
        // the whole group: run each server alone, so only that one's
        // messages see the failure and are charged a retry.
        else for (const id of ids) void this.alone(group.filter((w) => w.serverId === id), id);
      },
    );
  }

  private async alone(waiters: Waiter[], serverId: number): Promise<void> {
    try {
      answer(waiters, await recordHeartbeats(this.sql, [serverId]));
    } catch (err) {
      for (const w of waiters) w.reject(err);
    }
  }
}

function answer(waiters: Waiter[], changes: Map<number, HostChange>): void {
  for (const w of waiters) w.resolve(changes.get(w.serverId) ?? { found: false, previousStatus: null, events: [] });
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
  const changes = new Map<number, HostChange>();
  for (const s of row!.seen ?? []) changes.set(Number(s.server_id), { found: true, previousStatus: s.previous, events: [] });
  for (const e of row!.events ?? []) changes.get(Number(e.payload.server_id))?.events.push(e);
  return changes;
}
