/**
 * The relay's claims on outbox rows, each one statement with no
 * transaction around it: a claim pushes the row's `created_at` LEASE_MS
 * into the future, so no other relay (another replica) takes it while this
 * one publishes it; the caller deletes what the broker confirmed and
 * releases what it could not publish. If the process dies holding a claim,
 * the row becomes a leftover again when the lease ends: announced later,
 * never lost.
 *
 * (Why not a transaction holding row locks while publishing: postgres.js
 * 3.4 on Bun crashes the process with an uncaught TypeError when a
 * transaction's connection dies under it and it writes its ROLLBACK to the
 * closed socket; a relay runs exactly when connections die.)
 */
import type { Sql } from "./pool.ts";
import type { OutboxEvent } from "../events/store.ts";

/** Rows older than `olderThanMs` (left by a process that died, or refused): claimed for `leaseMs`. */
export async function claimLeftovers(sql: Sql, olderThanMs: number, leaseMs: number, limit: number): Promise<OutboxEvent[]> {
  return (await sql`
    UPDATE processor_outbox o SET created_at = now() + make_interval(secs => ${leaseMs / 1000})
    FROM (
      SELECT id FROM processor_outbox
      WHERE created_at < now() - make_interval(secs => ${olderThanMs / 1000})
      ORDER BY id LIMIT ${limit}
      FOR UPDATE SKIP LOCKED
    ) due
    WHERE o.id = due.id
    RETURNING o.id, o.routing_key, o.payload, o.exchange, o.body, o.properties`) as unknown as OutboxEvent[];
}

/**
 * This process's own rows whose publish failed, by id, unless another relay
 * holds a claim on them (its lease puts `created_at` in the future).
 */
export async function claimDeferred(sql: Sql, ids: readonly number[], leaseMs: number): Promise<OutboxEvent[]> {
  if (ids.length === 0) return [];
  return (await sql`
    UPDATE processor_outbox o SET created_at = now() + make_interval(secs => ${leaseMs / 1000})
    FROM (
      SELECT id FROM processor_outbox
      WHERE id = ANY(${sql.array(ids as number[])}::bigint[]) AND created_at <= now()
      FOR UPDATE SKIP LOCKED
    ) mine
    WHERE o.id = mine.id
    RETURNING o.id, o.routing_key, o.payload, o.exchange, o.body, o.properties`) as unknown as OutboxEvent[];
}

/** Gives claimed rows back at once (their publish failed), so the next pass can take them without waiting for the lease. */
export async function releaseClaims(sql: Sql, ids: readonly number[], olderThanMs: number): Promise<void> {
  if (ids.length === 0) return;
  await sql`
    UPDATE processor_outbox SET created_at = now() - make_interval(secs => ${olderThanMs / 1000})
    WHERE id = ANY(${sql.array(ids as number[])}::bigint[])`;
}
