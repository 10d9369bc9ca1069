/**
 * Runs MIGRATIONS once per database, under an advisory lock so replicas that
 * start together take turns, with our own history table.
 */
import type { Sql } from "./pool.ts";
import { MIGRATIONS, type Migration } from "./migrations.ts";

// Any fixed 64-bit number works; this one is "manman" in ASCII, so it is
// recognisable in pg_locks and unlikely to collide with other applications.
const LOCK_KEY = 0x6d616e6d616en;

export interface MigrateResult {
  applied: string[];
  alreadyApplied: number;
}

export async function migrate(sql: Sql, migrations: readonly Migration[] = MIGRATIONS): Promise<MigrateResult> {
  return sql.begin(async (tx) => {
    // Transaction-scoped: released on commit or rollback, even if we crash.
    await tx`SELECT pg_advisory_xact_lock(${LOCK_KEY.toString()}::bigint)`;
    await tx`
      CREATE TABLE IF NOT EXISTS processor_migrations (
        id         TEXT PRIMARY KEY,
        applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
      )`;
    const done = new Set((await tx<{ id: string }[]>`SELECT id FROM processor_migrations`).map((r) => r.id));
    const applied: string[] = [];
    for (const m of migrations) {
      if (done.has(m.id)) continue;
      await tx.unsafe(m.sql);
      await tx`INSERT INTO processor_migrations (id) VALUES (${m.id})`;
      applied.push(m.id);
    }
    return { applied, alreadyApplied: done.size };
  }) as Promise<MigrateResult>;
}
