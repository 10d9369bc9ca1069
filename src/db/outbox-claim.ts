/**
 * The outbox rows whose fast-path publish this process saw fail (broker
 * down or refusing). The relay republishes them as soon as the broker is
 * back instead of waiting for them to age into leftovers; other replicas'
 * young rows are not touched, so their live events are not announced twice.
 * One SQL operation, in the caller's transaction like `lockLeftovers`.
 */
import type { Sql } from "./pool.ts";
import type { OutboxEvent } from "./outbox.ts";

export async function lockDeferred(tx: Sql, ids: readonly number[], limit: number): Promise<OutboxEvent[]> {
  if (ids.length === 0) return [];
  return (await tx`
    SELECT id, routing_key, payload FROM processor_outbox
    WHERE id = ANY(${tx.array(ids as number[])}::bigint[])
    ORDER BY id LIMIT ${limit}
    FOR UPDATE SKIP LOCKED`) as unknown as OutboxEvent[];
}
