/**
 * The event outbox: rows written in the same statement as the change they
 * announce (see hosts.ts, sessions.ts, stale.ts), deleted once the broker
 * has confirmed them. One SQL operation per function.
 */
import type { Sql } from "./pool.ts";

/** Forget events the broker has confirmed. */
export async function deletePublished(sql: Sql, ids: readonly number[]): Promise<void> {
  if (ids.length === 0) return;
  await sql`DELETE FROM processor_outbox WHERE id = ANY(${sql.array(ids as number[])}::bigint[])`;
}

/** Rows in the outbox now: a gauge an operator alerts on when it grows. */
export async function countPending(sql: Sql): Promise<number> {
  const [row] = await sql<{ n: bigint }[]>`SELECT count(*)::bigint AS n FROM processor_outbox`;
  return Number(row?.n ?? 0);
}
