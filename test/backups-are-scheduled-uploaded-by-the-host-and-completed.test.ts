/**
 * The backup scheduler end to end, with a real broker, a ManManV2 database,
 * a real S3-compatible server (s3rver) and a simulated host manager: a due
 * backup config becomes one backup per game server config, the host gets
 * its command and uploads a tarball to the pre-signed URL, its status
 * completes the row, and the next backup comes one cadence later. Uploads
 * go through S3_PUBLIC_ENDPOINT, a proxy in front of the server, which the
 * failure test cuts. Time moves by rewinding the rows' timestamps: a
 * cadence is at least a minute.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import postgres from "postgres";
import { startProcessor, type RunningProcessor } from "./support/processor.ts";
import { createVhost, waitFor, type TestDatabase, type TestVhost } from "./support/services.ts";
import { createManManV2Database, insertBackupConfig, insertDeployment, insertServer, insertSession, insertSgc } from "./support/manmanv2-schema.ts";
import { s3Request, useS3Server } from "./support/s3.ts";
import { TcpProxy } from "./support/tcp-proxy.ts";
import { SimulatedBackupHost } from "./support/backup-host.ts";

const s3 = useS3Server("backups");
let vhost: TestVhost;
let db: TestDatabase;
let sql: postgres.Sql;
let proxy: TcpProxy;
let processor: RunningProcessor;
let host: SimulatedBackupHost;

beforeAll(async () => {
  [vhost, db] = await Promise.all([createVhost("sched"), createManManV2Database("sched")]);
  sql = postgres(db.url, { max: 4, onnotice: () => {} });
  const endpoint = new URL(s3.server.endpoint);
  proxy = await TcpProxy.start(endpoint.hostname, Number(endpoint.port));
  processor = await startProcessor(vhost, db, {
    S3_BUCKET: s3.bucket, S3_ENDPOINT: s3.server.endpoint, S3_PUBLIC_ENDPOINT: `http://127.0.0.1:${proxy.port}`,
    S3_ACCESS_KEY: s3.server.accessKeyId, S3_SECRET_KEY: s3.server.secretAccessKey, S3_REGION: s3.server.region,
    BACKUP_SCAN_INTERVAL_SECONDS: "1",
  });
  host = await SimulatedBackupHost.connect(vhost.url);
});

afterAll(async () => {
  await host?.close();
  await processor?.stop();
  await proxy?.close();
  await sql?.end({ timeout: 1 });
  await Promise.all([vhost?.remove(), db?.remove()]);
});

type Row = { backup_id: string; server_game_config_id: string; session_id: string; volume_id: string; status: string; s3_url: string | null; error_message: string | null };
const backupsOf = (configId: number) =>
  sql<Row[]>`SELECT backup_id, server_game_config_id, session_id, volume_id, status, s3_url, error_message
             FROM backups WHERE backup_config_id = ${configId} ORDER BY backup_id`;
const lastBackupAt = async (configId: number) =>
  (await sql<{ t: Date | null }[]>`SELECT last_backup_at AS t FROM backup_configs WHERE backup_config_id = ${configId}`)[0]!.t;

/** Moves a config's history `seconds` into the past: as if that much time had gone by. */
async function rewind(configId: number, seconds: number): Promise<void> {
  await sql`UPDATE backup_configs SET last_backup_at = last_backup_at - make_interval(secs => ${seconds}) WHERE backup_config_id = ${configId}`;
  await sql`UPDATE backups SET created_at = created_at - make_interval(secs => ${seconds}) WHERE backup_config_id = ${configId}`;
}

/** Several scans go by (the interval is 1 s). */
const scansPass = () => Bun.sleep(3500);

async function addAction(configId: number, gameId: number, template: string, order: number, deleted = false): Promise<void> {
  const [a] = await sql<{ action_id: string }[]>`
    INSERT INTO action_definitions (name, label, command_template, entity_id, definition_level, deleted_at)
    VALUES (${`act_${Math.random().toString(36).slice(2, 10)}`}, 'Action', ${template}, ${gameId}, 'game', ${deleted ? new Date() : null})
    RETURNING action_id`;
  await sql`INSERT INTO backup_config_actions (backup_config_id, action_id, display_order) VALUES (${configId}, ${a!.action_id}, ${order})`;
}

test("a due config: one backup per game server config with a session, uploaded by its host, completed with the full URL; the next one cadence later", async () => {
  const d = await insertDeployment(sql);
  const running = await insertSession(sql, { sgcId: d.sgcId, status: "running", startedAt: new Date() });
  // A second host running the same game config, its session long over: it has a session, so it is backed up too (as upstream).
  const other = await insertSgc(sql, { serverId: await insertServer(sql), configId: d.configId });
  const ended = await insertSession(sql, { sgcId: other, status: "stopped", endedAt: new Date(Date.now() - 86_400_000) });
  // A third with no session at all: nothing to back up.
  await insertSgc(sql, { serverId: await insertServer(sql), configId: d.configId });
  const cfg = await insertBackupConfig(sql, { configId: d.configId, cadenceMinutes: 60, backupPath: "saves", volume: { name: "world", hostSubpath: "data", volumeType: "bind" } });
  await addAction(cfg.backupConfigId, d.gameId, "save-all", 2);
  await addAction(cfg.backupConfigId, d.gameId, "say Backing up {{.world}}", 1);
  await addAction(cfg.backupConfigId, d.gameId, "gone", 0, true);

  await waitFor(async () => (await backupsOf(cfg.backupConfigId)).filter((b) => b.status === "completed").length === 2, 20_000, "both backups completed");
  const rows = await backupsOf(cfg.backupConfigId);
  expect(rows.map((r) => [Number(r.server_game_config_id), Number(r.session_id), Number(r.volume_id)]).sort()).toEqual(
    [[d.sgcId, running, cfg.volumeId], [other, ended, cfg.volumeId]].sort(),
  );
  expect(await lastBackupAt(cfg.backupConfigId)).not.toBeNull();

  for (const row of rows) {
    const id = Number(row.backup_id);
    const key = `backups/${row.server_game_config_id}/${cfg.backupConfigId}/${id}.tar.gz`;
    expect(row.s3_url).toBe(`s3://${s3.bucket}/${key}`);
    const [cmd, ...again] = host.commandsFor(id);
    expect(again).toHaveLength(0);
    const serverId = row.server_game_config_id === String(d.sgcId) ? d.serverId : undefined;
    if (serverId) expect(cmd!.routingKey).toBe(`command.host.${serverId}.backup`);
    expect(cmd!.expiration).toBe("3600000");
    expect(cmd!.contentType).toBe("application/json");
    expect(Object.keys(cmd!.body)).toEqual([
      "backup_id", "sgc_id", "volume_type", "volume_host_path", "volume_name", "backup_path", "s3_key", "presigned_url", "pre_action_commands", "created_at",
    ]);
    expect(cmd!.body).toMatchObject({
      backup_id: id, sgc_id: Number(row.server_game_config_id), volume_type: "bind", volume_host_path: "data", volume_name: "world",
      backup_path: "saves", s3_key: key, pre_action_commands: ["say Backing up <no value>", "save-all"],
    });
    expect(Math.abs(Date.now() - Date.parse(cmd!.body.created_at))).toBeLessThan(60_000);
    const url = new URL(cmd!.body.presigned_url);
    expect(url.port).toBe(String(proxy.port)); // signed for the public endpoint
    expect(url.searchParams.get("X-Amz-Expires")).toBe("3600");
    // The object is on the server with the size the host uploaded.
    const head = await s3Request(s3.server, "HEAD", `/${s3.bucket}/${key}`);
    expect(head.status).toBe(200);
    expect(Number(head.headers.get("content-length"))).toBe(host.tarballBytes);
  }

  // Not due again before a cadence has passed since the last backup.
  await rewind(cfg.backupConfigId, 59 * 60);
  await scansPass();
  expect(await backupsOf(cfg.backupConfigId)).toHaveLength(2);
  await rewind(cfg.backupConfigId, 60);
  await waitFor(async () => (await backupsOf(cfg.backupConfigId)).filter((b) => b.status === "completed").length === 4, 20_000, "the next backups completed");
  expect(processor.service.metrics.get("manman_backup_scheduler_enabled")).toBe(1);
});

test("a failed upload leaves the backup failed with the host's error and last_backup_at alone; it is retried one cadence later", async () => {
  const d = await insertDeployment(sql);
  await insertSession(sql, { sgcId: d.sgcId, status: "running" });
  await proxy.cut(); // the public endpoint is unreachable
  const cfg = await insertBackupConfig(sql, { configId: d.configId, cadenceMinutes: 30 });
  await waitFor(async () => (await backupsOf(cfg.backupConfigId))[0]?.status === "failed", 20_000, "the backup failed");
  await proxy.restore();
  const [failed] = await backupsOf(cfg.backupConfigId);
  expect(failed!.error_message).toStartWith("failed to upload to S3");
  expect(await lastBackupAt(cfg.backupConfigId)).toBeNull();

  await scansPass();
  expect(await backupsOf(cfg.backupConfigId)).toHaveLength(1);
  await rewind(cfg.backupConfigId, 30 * 60);
  await waitFor(async () => (await backupsOf(cfg.backupConfigId))[1]?.status === "completed", 20_000, "the retry completed");
  expect(await lastBackupAt(cfg.backupConfigId)).not.toBeNull();
});

test("150 game server configs of one game config all get their backup (upstream stops at the first 100)", async () => {
  const { configId } = await insertDeployment(sql); // its own SGC has no session: not backed up
  const servers = await sql<{ server_id: string }[]>`
    INSERT INTO servers (name) SELECT 'many-' || g || '-' || ${configId} FROM generate_series(1, 150) g RETURNING server_id`;
  const sgcs = await sql<{ sgc_id: string }[]>`
    INSERT INTO server_game_configs (server_id, game_config_id)
    SELECT server_id, ${configId} FROM unnest(${servers.map((s) => s.server_id)}::bigint[]) server_id RETURNING sgc_id`;
  await sql`INSERT INTO sessions (sgc_id, status) SELECT sgc_id, 'running' FROM unnest(${sgcs.map((s) => s.sgc_id)}::bigint[]) sgc_id`;
  const cfg = await insertBackupConfig(sql, { configId, cadenceMinutes: 60 });

  await waitFor(async () => (await backupsOf(cfg.backupConfigId)).filter((b) => b.status === "completed").length === 150, 60_000, "all 150 completed");
  const rows = await backupsOf(cfg.backupConfigId);
  expect(rows).toHaveLength(150);
  expect(new Set(rows.map((r) => r.server_game_config_id)).size).toBe(150);
  const routed = new Set(host.commands.filter((c) => rows.some((r) => Number(r.backup_id) === c.body.backup_id)).map((c) => c.routingKey));
  expect(routed.size).toBe(150);
}, 90_000);
