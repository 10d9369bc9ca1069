/**
 * status.backup.<id> against a ManManV2 database (the API's schema): the
 * backups row, the config's last_backup_at on completed, and the rules for
 * late, unknown and soft-deleted backups.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import postgres from "postgres";
import { UNUSED_ARCHIVE_S3 } from "./support/archive.ts";
import { BrokerPeer, startProcessor, type RunningProcessor } from "./support/processor.ts";
import { createVhost, waitFor, type TestDatabase, type TestVhost } from "./support/services.ts";
import { createManManV2Database, insertBackup, insertBackupConfig, insertDeployment, insertSession } from "./support/manmanv2-schema.ts";

let vhost: TestVhost;
let db: TestDatabase;
let sql: postgres.Sql;
let processor: RunningProcessor;
let peer: BrokerPeer;

beforeAll(async () => {
  [vhost, db] = await Promise.all([createVhost("backups"), createManManV2Database("backups")]);
  sql = postgres(db.url, { max: 2, onnotice: () => {} });
  // S3_BUCKET also sends the log archive to S3, which needs keys; nothing is archived here.
  processor = await startProcessor(vhost, db, { S3_BUCKET: "prod-backups", ...UNUSED_ARCHIVE_S3 });
  peer = await BrokerPeer.connect(vhost.url);
});

afterAll(async () => {
  await peer?.close();
  await processor?.stop();
  await sql?.end({ timeout: 1 });
  await Promise.all([vhost?.remove(), db?.remove()]);
});

async function world() {
  const d = await insertDeployment(sql);
  const sessionId = await insertSession(sql, { sgcId: d.sgcId, status: "running" });
  const cfg = await insertBackupConfig(sql, { configId: d.configId });
  const backup = (o: { deletedAt?: Date; sizeBytes?: number } = {}) =>
    insertBackup(sql, { sessionId, sgcId: d.sgcId, backupConfigId: cfg.backupConfigId, volumeId: cfg.volumeId, ...o });
  const lastBackupAt = async () => (await sql`SELECT last_backup_at FROM backup_configs WHERE backup_config_id = ${cfg.backupConfigId}`)[0]!.last_backup_at;
  return { d, cfg, backup, lastBackupAt };
}
const row = async (id: number) => (await sql`SELECT status, s3_url, size_bytes, error_message FROM backups WHERE backup_id = ${id}`)[0]!;
const applied = () => processor.service.metrics.get("manman_event_messages_total", { kind: "backup_status", outcome: "applied" });

test("completed stores the full s3 url, keeps a known size and stamps the config; a late failed changes nothing", async () => {
  const w = await world();
  const id = await w.backup({ sizeBytes: 1234 });
  const key = `backups/${w.d.sgcId}/${w.cfg.backupConfigId}/${id}.tar.gz`;
  await peer.publish(`status.backup.${id}`, { backup_id: id, s3_url: `s3://${key}`, status: "completed" });
  await waitFor(async () => (await row(id)).status === "completed");
  expect(await row(id)).toEqual({ status: "completed", s3_url: `s3://prod-backups/${key}`, size_bytes: "1234", error_message: null });
  expect(await w.lastBackupAt()).not.toBeNull();
  const before = applied();
  await peer.publish(`status.backup.${id}`, { backup_id: id, status: "failed", error_message: "late" });
  await waitFor(() => processor.service.metrics.get("manman_event_messages_total", { kind: "backup_status", outcome: "stale" }) >= 1);
  expect((await row(id)).status).toBe("completed");
  expect(applied()).toBe(before);
});

test("failed keeps its error and leaves last_backup_at alone; a soft-deleted backup's completion does not stamp its config", async () => {
  const w = await world();
  const failed = await w.backup();
  await peer.publish(`status.backup.${failed}`, { backup_id: failed, status: "failed", error_message: "disk full" });
  await waitFor(async () => (await row(failed)).status === "failed");
  expect((await row(failed)).error_message).toBe("disk full");
  expect(await w.lastBackupAt()).toBeNull();
  const deleted = await w.backup({ deletedAt: new Date() });
  await peer.publish(`status.backup.${deleted}`, { backup_id: deleted, s3_url: "s3://backups/x.tar.gz", status: "completed" });
  await waitFor(async () => (await row(deleted)).status === "completed");
  expect(await w.lastBackupAt()).toBeNull();
});

test("an unknown backup id is dead-lettered with the reason", async () => {
  await peer.publish("status.backup.987654", { backup_id: 987654, status: "completed", s3_url: "s3://backups/1/2/987654.tar.gz" });
  const dead = await waitFor(() => peer.deadLettered.find((d) => d.routingKey === "status.backup.987654"));
  expect(String(dead.headers["x-death-reason"])).toContain("backup 987654 does not exist");
});
