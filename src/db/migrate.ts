/**
 * Runs MIGRATIONS once per database, under an advisory lock so replicas that
 * start together take turns, with our own history table.
 *
 * Two modes, decided on every run (after the lock, so replicas agree):
 *
 * - "manmanv2": the ManManV2 API's migrations own servers, sessions,
 *   server_ports, log_references and the rest. Contract migrations are
 *   skipped (not recorded, so nothing pretends they ran); only processor_*
 *   tables are created. Chosen when ANY of these holds:
 *     1. a `schema_migrations` table exists (golang-migrate's history, which
 *        ManManV2's migrate tool writes);
 *     2. a `server_game_configs` table exists (only the API creates it);
 *     3. `servers` or `sessions` exists but processor_migrations has no
 *        record of 0001_contract_tables: someone else created them.
 * - "standalone": none of the above; the contract migrations build and
 *   upgrade the ManManV2 tables themselves.
 *
 * A ManManV2 deployment must therefore run the API's migrations before the
 * processor's first start: on an empty database the processor would choose
 * standalone, and the API's 001 would then fail on triggers that exist.
 */
import type postgres from "postgres";
import type { Logger } from "../log.ts";
import type { Sql } from "./pool.ts";
import { MIGRATIONS, type Migration } from "./migrations.ts";

// Any fixed 64-bit number works; this one is "manman" in ASCII, so it is
// recognisable in pg_locks and unlikely to collide with other applications.
const LOCK_KEY = 0x6d616e6d616en;

export type SchemaMode = "standalone" | "manmanv2";

export interface MigrateResult {
  applied: string[];
  alreadyApplied: number;
  /** Contract migrations not run because the API owns those tables. */
  skipped: string[];
  mode: SchemaMode;
  /** Which rule chose the mode, for the log line. */
  modeReason: string;
}

export interface MigrateOptions {
  migrations?: readonly Migration[];
  /** Given one, migrate logs the mode it chose and why. */
  logger?: Logger;
  /** Before each migration it applies (`step` of `total`), for a progress line: one may take minutes on a large database. */
  onStep?: (id: string, step: number, total: number) => void;
}

type Tx = postgres.TransactionSql<{ bigint: bigint }>;

async function detectSchemaMode(tx: Tx): Promise<{ mode: SchemaMode; reason: string }> {
  const [row] = await tx<{ golang_migrate: boolean; api_tables: boolean; contract_tables: boolean; ours: boolean }[]>`
    SELECT to_regclass('schema_migrations') IS NOT NULL AS golang_migrate,
           to_regclass('server_game_configs') IS NOT NULL AS api_tables,
           (to_regclass('servers') IS NOT NULL OR to_regclass('sessions') IS NOT NULL) AS contract_tables,
           EXISTS (SELECT 1 FROM processor_migrations WHERE id = '0001_contract_tables') AS ours`;
  if (row!.golang_migrate) return { mode: "manmanv2", reason: "schema_migrations (golang-migrate) exists" };
  if (row!.api_tables) return { mode: "manmanv2", reason: "server_game_configs exists" };
  if (row!.contract_tables && !row!.ours) {
    return { mode: "manmanv2", reason: "servers/sessions exist and were not created by the processor" };
  }
  return { mode: "standalone", reason: row!.ours ? "contract tables created by the processor" : "no ManManV2 schema found" };
}

export async function migrate(sql: Sql, options: MigrateOptions = {}): Promise<MigrateResult> {
  const migrations = options.migrations ?? MIGRATIONS;
  const result = (await sql.begin(async (tx) => {
    // Transaction-scoped: released on commit or rollback, even if we crash.
    await tx`SELECT pg_advisory_xact_lock(${LOCK_KEY.toString()}::bigint)`;
    await tx`
      CREATE TABLE IF NOT EXISTS processor_migrations (
        id         TEXT PRIMARY KEY,
        applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
      )`;
    const { mode, reason } = await detectSchemaMode(tx);
    const done = new Set((await tx<{ id: string }[]>`SELECT id FROM processor_migrations`).map((r) => r.id));
    const applied: string[] = [];
    const skipped = migrations.filter((m) => !done.has(m.id) && m.scope === "contract" && mode === "manmanv2").map((m) => m.id);
    const pending = migrations.filter((m) => !done.has(m.id) && !skipped.includes(m.id));
    for (const m of pending) {
      options.onStep?.(m.id, applied.length + 1, pending.length);
      await tx.unsafe(m.sql);
      await tx`INSERT INTO processor_migrations (id) VALUES (${m.id})`;
      applied.push(m.id);
    }
    return { applied, alreadyApplied: done.size, skipped, mode, modeReason: reason };
  })) as MigrateResult;
  options.logger?.info("database schema mode", {
    mode: result.mode,
    reason: result.modeReason,
    applied: result.applied,
    skipped: result.skipped,
  });
  return result;
}
