/**
 * The event outbox: rows written in the same statement as the change they
 * announce (see hosts.ts, sessions.ts, stale.ts), deleted once the broker
 * has confirmed them. One SQL operation per function.
 */
import type { Sql } from "./pool.ts";

/** An external event waiting to be published. */
export interface OutboxEvent {
  id: number;
  routing_key: string;
  payload: Record<string, unknown>;
}

/**
 * SQL fragment shared by every statement that announces something: the
 * INSERT … RETURNING whose rows come back to the caller as `events`.
 */
export const OUTBOX_COLUMNS = "id, routing_key, payload";

/** Forget events the broker has confirmed. */
export async function deletePublished(sql: Sql, ids: readonly number[]): Promise<void> {
  if (ids.length === 0) return;
  await sql`DELETE FROM processor_outbox WHERE id = ANY(${sql.array(ids as number[])}::bigint[])`;
}

/**
 * Events left behind (the process died, or the broker refused them, between
 * commit and confirm), older than `olderThanMs` so the fast path of a live
 * process is not raced. Locked with SKIP LOCKED for the length of the
 * caller's transaction, so replicas never relay the same row at once.
 */
export async function lockLeftovers(tx: Sql, olderThanMs: number, limit: number): Promise<OutboxEvent[]> {
  return (await tx`
    SELECT id, routing_key, payload FROM processor_outbox
    WHERE created_at < now() - make_interval(secs => ${olderThanMs / 1000})
    ORDER BY id LIMIT ${limit}
    FOR UPDATE SKIP LOCKED`) as unknown as OutboxEvent[];
}

/** Rows in the outbox now: a gauge an operator alerts on when it grows. */
export async function countPending(sql: Sql): Promise<number> {
  const [row] = await sql<{ n: bigint }[]>`SELECT count(*)::bigint AS n FROM processor_outbox`;
  return Number(row?.n ?? 0);
}
