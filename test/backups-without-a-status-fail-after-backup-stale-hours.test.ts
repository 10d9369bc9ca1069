/**
 * The stale backup sweep (BACKUP_STALE_HOURS): a backup still `pending` or
 * `running` that long after its creation will never hear from its host (its
 * command and upload URL lived an hour), so it becomes `failed` with a
 * message saying so. One statement: replicas sweeping at once fail each
 * backup once; finished and younger backups are left alone.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import postgres from "postgres";
import { createPool, type Sql } from "../src/db/pool.ts";
import { sweepStaleBackups } from "../src/event-pipeline/backup-scheduler.ts";
import { silentLogger } from "../src/log.ts";
import { Metrics } from "../src/metrics.ts";
import type { TestDatabase } from "./support/services.ts";
import { createManManV2Database, insertBackup, insertBackupConfig, insertDeployment, insertSession } from "./support/manmanv2-schema.ts";

let db: TestDatabase;
let sql: postgres.Sql;
let pools: Sql[];

beforeAll(async () => {
  db = await createManManV2Database("stalebk");
  sql = postgres(db.url, { max: 2, onnotice: () => {} });
  // Two replicas' pools.
  pools = [0, 1].map(() => createPool({ url: db.url, max: 2, statementTimeoutMs: 5000 }));
});
afterAll(async () => {
  await Promise.all(pools.map((p) => p.end()));
  await sql?.end({ timeout: 1 });
  await db?.remove();
});

test("pending and running backups older than BACKUP_STALE_HOURS fail once, with the reason; finished and younger ones stay", async () => {
  const d = await insertDeployment(sql);
  const sessionId = await insertSession(sql, { sgcId: d.sgcId, status: "running" });
  const cfg = await insertBackupConfig(sql, { configId: d.configId });
  const make = async (status: "pending" | "running" | "completed" | "failed", hoursAgo: number) => {
    const id = await insertBackup(sql, { sessionId, sgcId: d.sgcId, backupConfigId: cfg.backupConfigId, volumeId: cfg.volumeId, status });
    await sql`UPDATE backups SET created_at = LOCALTIMESTAMP - make_interval(mins => ${Math.round(hoursAgo * 60)}) WHERE backup_id = ${id}`;
    return id;
  };
  const stalePending = await make("pending", 3);
  const staleRunning = await make("running", 2.1);
  const young = await make("pending", 1.9);
  const completed = await make("completed", 5);
  const failedBefore = await make("failed", 5);

  const [a, b] = await Promise.all(pools.map((p) => sweepStaleBackups(p, 2, silentLogger, new Metrics())));
  expect([...a!, ...b!].sort((x, y) => x - y)).toEqual([stalePending, staleRunning]);

  const rows = Object.fromEntries((await sql<{ backup_id: string; status: string; error_message: string | null }[]>`
    SELECT backup_id, status, error_message FROM backups ORDER BY backup_id`).map((r) => [Number(r.backup_id), [r.status, r.error_message]]));
  expect(rows[stalePending]).toEqual(["failed", "no completed or failed status from the host within 2 h of the backup's creation (it was pending); marked failed by the processor's stale sweep"]);
  expect(rows[staleRunning]).toEqual(["failed", "no completed or failed status from the host within 2 h of the backup's creation (it was running); marked failed by the processor's stale sweep"]);
  expect(rows[young]).toEqual(["pending", null]);
  expect(rows[completed]).toEqual(["completed", null]);
  expect(rows[failedBefore]).toEqual(["failed", null]);
  expect((await sql`SELECT last_backup_at FROM backup_configs WHERE backup_config_id = ${cfg.backupConfigId}`)[0]!.last_backup_at).toBeNull();

  // Nothing left to fail.
  expect(await sweepStaleBackups(pools[0]!, 2, silentLogger, new Metrics())).toEqual([]);
});
