/**
 * The scheduler's guarantees across replicas and failures: replicas scanning
 * at once create each backup once; a backup row and its command are
 * committed together, so a broker that refuses publishes or a scanner that
 * dies right after its commit leaves the command in the outbox, and it
 * reaches the host once the broker (or another replica) is there.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import postgres from "postgres";
import { migrate } from "../src/db/migrate.ts";
import { createPool } from "../src/db/pool.ts";
import { createPresigner, scanBackups } from "../src/event-pipeline/backup-scheduler.ts";
import { silentLogger } from "../src/log.ts";
import { Metrics } from "../src/metrics.ts";
import { startProcessor, testConfig, type RunningProcessor } from "./support/processor.ts";
import { BROKER_HOST, BROKER_PORT, createVhost, waitFor, type TestDatabase, type TestVhost } from "./support/services.ts";
import { createManManV2Database, insertBackupConfig, insertDeployment, insertGameConfig, insertServer, insertSession } from "./support/manmanv2-schema.ts";
import { useS3Server } from "./support/s3.ts";
import { TcpProxy } from "./support/tcp-proxy.ts";
import { SimulatedBackupHost } from "./support/backup-host.ts";

const s3 = useS3Server("backups-once");
let vhost: TestVhost;
let db: TestDatabase;
let sql: postgres.Sql;
let host: SimulatedBackupHost;
const running: RunningProcessor[] = [];

const env = () => ({
  S3_BUCKET: s3.bucket, S3_ENDPOINT: s3.server.endpoint, S3_ACCESS_KEY: s3.server.accessKeyId, S3_SECRET_KEY: s3.server.secretAccessKey,
  BACKUP_SCAN_INTERVAL_SECONDS: "1", LOG_LEVEL: "info",
});
async function start(extra: Record<string, string> = {}): Promise<RunningProcessor> {
  const p = await startProcessor(vhost, db, { ...env(), ...extra });
  running.push(p);
  return p;
}
async function stop(p: RunningProcessor): Promise<void> {
  running.splice(running.indexOf(p), 1);
  await p.stop();
}

beforeAll(async () => {
  [vhost, db] = await Promise.all([createVhost("once"), createManManV2Database("once")]);
  sql = postgres(db.url, { max: 4, onnotice: () => {} });
  // Migrated first, as in a deployment: the tests' own scans may run before a replica has started.
  const pool = createPool({ url: db.url, max: 1, statementTimeoutMs: 10_000 });
  await migrate(pool);
  await pool.end();
  host = await SimulatedBackupHost.connect(vhost.url);
});
afterAll(async () => {
  await host?.close();
  await Promise.all(running.map((p) => p.stop()));
  await sql?.end({ timeout: 1 });
  await Promise.all([vhost?.remove(), db?.remove()]);
});

/** `configs` game configs, each deployed on the same `perConfig` servers with a running session there, each with a due backup config. */
async function duePairs(configs: number, perConfig: number): Promise<number[]> {
  const servers: number[] = [];
  for (let i = 0; i < perConfig; i++) servers.push(await insertServer(sql));
  const ids: number[] = [];
  for (let i = 0; i < configs; i++) {
    const { configId } = await insertGameConfig(sql);
    await sql`
      WITH sgc AS (
        INSERT INTO server_game_configs (server_id, game_config_id) SELECT s, ${configId} FROM unnest(${servers}::bigint[]) s RETURNING sgc_id
      )
      INSERT INTO sessions (sgc_id, status) SELECT sgc_id, 'running' FROM sgc`;
    ids.push((await insertBackupConfig(sql, { configId, cadenceMinutes: 60 })).backupConfigId);
  }
  return ids;
}

const backupsPerPair = (configIds: number[]) =>
  sql<{ backup_config_id: string; server_game_config_id: string; n: number; completed: number }[]>`
    SELECT backup_config_id, server_game_config_id, count(*)::int AS n, count(*) FILTER (WHERE status = 'completed')::int AS completed
    FROM backups WHERE backup_config_id = ANY(${configIds}::bigint[]) GROUP BY 1, 2`;

test("two replicas and eight scans at once: each (config, game server config) gets exactly one backup, and its host one command for it", async () => {
  const configIds = await duePairs(20, 3);
  const pairs = configIds.length * 3;
  // Two replicas start together, so their first scans (at start) race each other and eight more scans.
  const presigner = createPresigner(testConfig(vhost, db, env()))!;
  const scan = () => scanBackups({ url: db.url, statementTimeoutMs: 5000, presigner, publish: async () => {}, logger: silentLogger, metrics: new Metrics() });
  const [replicas, direct] = await Promise.all([Promise.all([start(), start()]), Promise.all(Array.from({ length: 8 }, scan))]);
  await waitFor(async () => (await backupsPerPair(configIds)).reduce((n, r) => n + r.completed, 0) === pairs, 40_000, "every backup completed");
  await Bun.sleep(3000); // more scans by both replicas

  const rows = await backupsPerPair(configIds);
  expect(rows).toHaveLength(pairs);
  expect(rows.filter((r) => r.n !== 1)).toEqual([]);
  const ids = (await sql<{ backup_id: string }[]>`SELECT backup_id FROM backups WHERE backup_config_id = ANY(${configIds}::bigint[])`).map((r) => Number(r.backup_id));
  // Those the direct scans created were "published" by nobody: the replicas' relays sent them.
  // A command is sent twice only after a lost confirm (at least once); here none was lost.
  expect(ids.filter((id) => host.commandsFor(id).length !== 1)).toEqual([]);
  // Whoever held the scan lock created them; nobody else did.
  const scanned = replicas.reduce((n, p) => n + p.service.metrics.get("manman_backups_scheduled_total"), 0) + direct.reduce((n, e) => n + (e?.length ?? 0), 0);
  expect(scanned).toBe(pairs);
  for (const p of replicas) await stop(p);
}, 60_000);

test("the broker refuses publishes: the backup row is committed with its command in the outbox, which reaches the host once the broker is back", async () => {
  const proxy = await TcpProxy.start(BROKER_HOST, BROKER_PORT);
  try {
    const p = await start({ RABBITMQ_URL: proxy.route(vhost.url) });
    await proxy.cut();
    const d = await insertDeployment(sql);
    await insertSession(sql, { sgcId: d.sgcId, status: "running" });
    const cfg = await insertBackupConfig(sql, { configId: d.configId, cadenceMinutes: 60 });
    const id = await waitFor(async () => (await sql<{ backup_id: string }[]>`SELECT backup_id FROM backups WHERE backup_config_id = ${cfg.backupConfigId}`)[0]?.backup_id, 20_000, "the backup row");
    const waiting = await sql`SELECT exchange, routing_key, properties, body::jsonb ->> 'backup_id' AS backup_id FROM processor_outbox WHERE exchange IS NOT NULL`;
    expect(waiting.map((r) => ({ ...r }))).toEqual([{ exchange: "manman", routing_key: `command.host.${d.serverId}.backup`, properties: { expiration: "3600000" }, backup_id: id }]);
    await Bun.sleep(2000);
    expect(host.commandsFor(Number(id))).toHaveLength(0);
    expect((await sql`SELECT status FROM backups WHERE backup_id = ${id}`)[0]!.status).toBe("pending");

    await proxy.restore();
    await waitFor(async () => (await sql`SELECT status FROM backups WHERE backup_id = ${id}`)[0]!.status === "completed", 30_000, "completed after the broker came back");
    expect(host.commandsFor(Number(id))).toHaveLength(1);
    await waitFor(async () => (await sql`SELECT count(*)::int AS n FROM processor_outbox`)[0]!.n === 0, 10_000, "the outbox emptied");
    await stop(p);
  } finally {
    await proxy.close();
  }
}, 60_000);

test("a scanner that dies right after its commit leaves no orphan: a replica started later relays the command, and does not create the backup again", async () => {
  const d = await insertDeployment(sql);
  await insertSession(sql, { sgcId: d.sgcId, status: "running" });
  const cfg = await insertBackupConfig(sql, { configId: d.configId, cadenceMinutes: 60 });
  const presigner = createPresigner(testConfig(vhost, db, env()))!;
  // The "process" commits its rows and dies before publishing anything.
  const died = await scanBackups({ url: db.url, statementTimeoutMs: 5000, presigner, publish: () => Promise.reject(new Error("killed")), logger: silentLogger, metrics: new Metrics() });
  expect(died).toHaveLength(1);
  const id = Number(died![0]!.payload.backup_id);

  await start();
  await waitFor(async () => (await sql`SELECT status FROM backups WHERE backup_id = ${id}`)[0]!.status === "completed", 40_000, "completed via the relay");
  expect(host.commandsFor(id)).toHaveLength(1);
  expect((await backupsPerPair([cfg.backupConfigId]))[0]!.n).toBe(1);
}, 60_000);
