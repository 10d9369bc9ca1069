/**
 * The scheduler needs S3 settings (to sign upload URLs) and the ManManV2
 * API's tables (only the API's migrations create them). Without either it
 * stays off, says why once at start, and shows 0 in
 * manman_backup_scheduler_enabled; nothing is scheduled.
 */
import { afterEach, expect, test } from "bun:test";
import postgres from "postgres";
import { startProcessor, type RunningProcessor } from "./support/processor.ts";
import { createDatabase, createVhost, waitFor, type TestDatabase, type TestVhost } from "./support/services.ts";
import { createManManV2Database, insertBackupConfig, insertDeployment, insertSession } from "./support/manmanv2-schema.ts";

let cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

async function run(kind: "standalone" | "manmanv2", env: Record<string, string>): Promise<{ processor: RunningProcessor; db: TestDatabase }> {
  const [vhost, db]: [TestVhost, TestDatabase] = await Promise.all([createVhost("bkoff"), kind === "standalone" ? createDatabase("bkoff") : createManManV2Database("bkoff")]);
  const processor = await startProcessor(vhost, db, { BACKUP_SCAN_INTERVAL_SECONDS: "1", ...env });
  cleanup.push(async () => {
    await processor.stop();
    await Promise.all([vhost.remove(), db.remove()]);
  });
  return { processor, db };
}

const offLines = (p: RunningProcessor) => p.logs.filter((l) => l.msg === "backup scheduler off");
const S3 = { S3_BUCKET: "backups", S3_ENDPOINT: "http://127.0.0.1:9", S3_ACCESS_KEY: "k", S3_SECRET_KEY: "s" };

test("a ManManV2 database without S3 settings: off, one warning naming what is unset, gauge 0, no backup created", async () => {
  const { processor, db } = await run("manmanv2", {});
  const sql = postgres(db.url, { max: 1, onnotice: () => {} });
  cleanup.push(() => sql.end({ timeout: 1 }));
  const d = await insertDeployment(sql);
  await insertSession(sql, { sgcId: d.sgcId, status: "running" });
  await insertBackupConfig(sql, { configId: d.configId });
  await waitFor(() => offLines(processor).length > 0, 10_000, "the off line");
  await Bun.sleep(2500); // a few intervals
  expect(offLines(processor)).toHaveLength(1);
  expect(offLines(processor)[0]).toMatchObject({ level: "warn", reason: "S3 is not configured (S3_BUCKET, S3_ACCESS_KEY, S3_SECRET_KEY unset): hosts need a pre-signed upload URL" });
  expect(processor.service.metrics.get("manman_backup_scheduler_enabled")).toBe(0);
  expect((await sql`SELECT count(*)::int AS n FROM backups`)[0]!.n).toBe(0);
  const metrics = await (await fetch(processor.url("/metrics"))).text();
  expect(metrics).toContain("manman_backup_scheduler_enabled 0");
});

test("a standalone database (no API tables) with S3 settings: off, one line naming the missing tables, gauge 0", async () => {
  const { processor } = await run("standalone", S3);
  await waitFor(() => offLines(processor).length > 0, 10_000, "the off line");
  await Bun.sleep(1500);
  expect(offLines(processor)).toHaveLength(1);
  expect(offLines(processor)[0]).toMatchObject({
    level: "info",
    reason: "this database has no action_definitions, backup_config_actions, backup_configs, backups, game_config_volumes, server_game_configs (the ManManV2 API's migrations create them)",
  });
  expect(processor.service.metrics.get("manman_backup_scheduler_enabled")).toBe(0);
});
