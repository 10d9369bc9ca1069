/**
 * A replay of what real ManManV2 host managers publish (UPSTREAM.md §1), with
 * their exact bodies (Go struct field order, `sgc_id: 0` where the host has
 * none), properties and cadence, against a database shaped by the ManManV2
 * API's migrations. Thresholds are shortened (sessions 3 s, hosts 3 s) and
 * the 5 s tickers run every second, so the addon-download keepalive outlasts
 * the stale-session threshold several times over.
 *
 * The life of several sessions on two hosts: a long addon download then a
 * crash with exit code, a stop, a force kill, a stop while starting, a start
 * failure, a session superseded by a newer one of its config; backups that
 * complete and fail; a host that shuts down and comes back; a deleted host
 * that keeps heartbeating. Every row, every freed port, every external event
 * is checked, the dead-letter queue stays empty, and no healthy session is
 * ever lost.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { AMQPClient, type AMQPChannel } from "@cloudamqp/amqp-client";
import postgres from "postgres";
import {
  backupCompletedBody, backupFailedBody, backupStatusKey, heartbeatBody, heartbeatKey, HOST_EXCHANGE, hostProperties, hostStatusBody, hostStatusKey,
  sessionStatusBody, sessionStatusKey, type HostSessionStatus,
} from "../src/tools/fleet/messages.ts";
import { UNUSED_ARCHIVE_S3 } from "./support/archive.ts";
import { BrokerPeer, startProcessor, type RunningProcessor } from "./support/processor.ts";
import { createVhost, waitFor, type TestDatabase, type TestVhost } from "./support/services.ts";
import { createManManV2Database, insertBackup, insertBackupConfig, insertDeployment, insertServer, insertSession } from "./support/manmanv2-schema.ts";

setDefaultTimeout(90_000);
const TICK_MS = 1000; // the host's 5 s tickers, shortened
const BUCKET = "manman-backups";

let vhost: TestVhost;
let db: TestDatabase;
let sql: postgres.Sql;
let processor: RunningProcessor;
let peer: BrokerPeer;
let hostConn: AMQPClient;
let watching = true;

/** One host manager: publishes exactly what H/rmq/publisher.go marshals. */
class HostManager {
  private ticker: ReturnType<typeof setInterval> | undefined;
  readonly sessions = new Map<number, string>(); // its in-memory state map

  constructor(
    private readonly ch: AMQPChannel,
    readonly serverId: number,
  ) {}

  private publish(key: string, json: string): Promise<void> {
    return this.ch.basicPublish(HOST_EXCHANGE, key, json, hostProperties(new Date())).then(() => {});
  }
  async online(): Promise<void> {
    await this.publish(hostStatusKey(this.serverId), hostStatusBody(this.serverId, "online"));
    await this.heartbeat(); // once right after online, then every tick
    this.ticker = setInterval(() => void this.heartbeat().catch(() => {}), TICK_MS);
  }
  async offline(): Promise<void> {
    clearInterval(this.ticker);
    await this.publish(hostStatusKey(this.serverId), hostStatusBody(this.serverId, "offline"));
  }
  heartbeat(): Promise<void> {
    const count = (s: string) => [...this.sessions.values()].filter((v) => v === s).length;
    const stats = { total: this.sessions.size, pending: 0, starting: count("starting"), running: count("running"), stopping: count("stopping"), stopped: 0, crashed: 0 };
    return this.publish(heartbeatKey(this.serverId), heartbeatBody(this.serverId, stats));
  }
  session(sessionId: number, sgcId: number, status: HostSessionStatus, exitCode?: number): Promise<void> {
    if (["stopped", "crashed"].includes(status)) this.sessions.delete(sessionId);
    else this.sessions.set(sessionId, status);
    return this.publish(sessionStatusKey(sessionId), sessionStatusBody(sessionId, sgcId, status, exitCode));
  }
  /** Start command: starting, then (with addons) a starting keepalive with sgc_id 0 every tick, then running. */
  async start(sessionId: number, sgcId: number, addonTicks = 0): Promise<void> {
    await this.session(sessionId, sgcId, "starting");
    for (let i = 0; i < addonTicks; i++) {
      await Bun.sleep(TICK_MS);
      await this.session(sessionId, 0, "starting");
    }
    await this.session(sessionId, sgcId, "running");
  }
  /** Stop command: stopping and stopped with the sgc_id, no exit_code although the host read it. */
  async stop(sessionId: number, sgcId: number): Promise<void> {
    await this.session(sessionId, sgcId, "stopping");
    await this.session(sessionId, sgcId, "stopped");
  }
  /** Kill command: no stopping; stopped with sgc_id 0. */
  kill(sessionId: number): Promise<void> {
    return this.session(sessionId, 0, "stopped");
  }
  backupCompleted(backupId: number, key: string): Promise<void> {
    return this.publish(backupStatusKey(backupId), backupCompletedBody(backupId, key));
  }
  backupFailed(backupId: number, error: string): Promise<void> {
    return this.publish(backupStatusKey(backupId), backupFailedBody(backupId, error));
  }
  stopTicking(): void {
    clearInterval(this.ticker);
  }
}

beforeAll(async () => {
  [vhost, db] = await Promise.all([createVhost("replay"), createManManV2Database("replay")]);
  sql = postgres(db.url, { max: 4, onnotice: () => {} });
  processor = await startProcessor(vhost, db, {
    STALE_SESSION_THRESHOLD_SECONDS: "3",
    STALE_HOST_THRESHOLD_SECONDS: "3",
    STALE_CHECK_INTERVAL_SECONDS: "1",
    FORWARD_SKIP_RETRY_SECONDS: "2",
    S3_BUCKET: BUCKET,
    // S3_BUCKET also sends the log archive to S3, which needs keys; nothing is archived here.
    ...UNUSED_ARCHIVE_S3,
  });
  peer = await BrokerPeer.connect(vhost.url);
  hostConn = new AMQPClient(vhost.url);
  await hostConn.connect();
});

afterAll(async () => {
  watching = false;
  await hostConn?.close().catch(() => {});
  await peer?.close();
  await processor?.stop();
  await sql?.end({ timeout: 1 });
  await Promise.all([vhost?.remove(), db?.remove()]);
});

test("a replay of real host managers leaves every row, port and event as the ManManV2 system needs, and nothing dead-lettered", async () => {
  // The API's side: two hosts, six game server configs, sessions with ports.
  const serverA = await insertServer(sql, { name: "host-a" });
  const serverB = await insertServer(sql, { name: "host-b" });
  const deletedHost = await insertServer(sql, { name: "host-deleted" });
  await sql`DELETE FROM servers WHERE server_id = ${deletedHost}`;
  const deploy = (serverId: number) => insertDeployment(sql, { serverId });
  const [a1, a2, a3, a4, b1, b2] = await Promise.all([deploy(serverA), deploy(serverA), deploy(serverA), deploy(serverA), deploy(serverB), deploy(serverB)]);
  const session = (sgcId: number) => insertSession(sql, { sgcId });
  const crashes = await session(a1!.sgcId); // long addon download, runs, crashes with 137
  const stopped = await session(a2!.sgcId); // runs, stopped by a user
  const failsToStart = await session(a3!.sgcId); // image pull fails: crashed, no exit code
  const superseded = await session(a4!.sgcId); // runs, then a newer session of a4 runs
  const killed = await session(b1!.sgcId); // runs, force-killed
  const cancelled = await session(b2!.sgcId); // stopped while downloading addons
  const ports: [number, number, string, number][] = [
    [serverA, 27015, "UDP", crashes], [serverA, 27016, "TCP", crashes], [serverA, 27020, "TCP", stopped],
    [serverA, 27030, "UDP", failsToStart], [serverA, 27040, "TCP", superseded],
    [serverB, 27015, "UDP", killed], [serverB, 27050, "TCP", cancelled],
  ];
  for (const [server, port, protocol, sessionId] of ports) {
    await sql`INSERT INTO server_ports (server_id, port, protocol, session_id) VALUES (${server}, ${port}, ${protocol}, ${sessionId})`;
  }
  const volume = await insertBackupConfig(sql, { configId: a2!.configId });
  const backupOk = await insertBackup(sql, { sessionId: stopped, sgcId: a2!.sgcId, backupConfigId: volume.backupConfigId, volumeId: volume.volumeId });
  const backupBad = await insertBackup(sql, { sessionId: stopped, sgcId: a2!.sgcId, backupConfigId: volume.backupConfigId, volumeId: volume.volumeId });

  // Watch for any session ever marked lost, however briefly.
  const everLost = new Set<number>();
  const watcher = (async () => {
    while (watching) {
      for (const r of await sql`SELECT session_id FROM sessions WHERE status = 'lost'`) everLost.add(Number(r.session_id));
      await Bun.sleep(200);
    }
  })();

  const status = async (id: number) => (await sql`SELECT status, exit_code, started_at, ended_at FROM sessions WHERE session_id = ${id}`)[0]!;
  let supersedes = 0;
  const ch = await hostConn.channel();
  const hostA = new HostManager(ch, serverA);
  const hostB = new HostManager(ch, serverB);
  const ghost = new HostManager(ch, deletedHost); // its row was deleted; it keeps heartbeating
  await Promise.all([hostA.online(), hostB.online(), ghost.online()]);

  await Promise.all([
    (async () => {
      await hostA.start(crashes, a1!.sgcId, 6); // 6 s of addon keepalives > the 3 s threshold
      await Bun.sleep(500);
      await hostA.session(crashes, a1!.sgcId, "crashed", 137); // container exited while running
    })(),
    (async () => {
      await hostA.start(stopped, a2!.sgcId);
      await Bun.sleep(300);
      await hostA.stop(stopped, a2!.sgcId);
      await hostA.backupCompleted(backupOk, `backups/${a2!.sgcId}/${volume.backupConfigId}/${backupOk}.tar.gz`);
      await hostA.backupFailed(backupBad, "tar: /data: Cannot open: No such file or directory");
    })(),
    (async () => {
      await hostA.session(failsToStart, a3!.sgcId, "starting");
      await hostA.session(failsToStart, a3!.sgcId, "crashed"); // start failure: no exit code
    })(),
    (async () => {
      await hostA.start(superseded, a4!.sgcId);
      await waitFor(async () => (await status(superseded)).status === "running");
      // A user force-starts a new session of the same config: the API
      // creates it (and its ports), the host starts it.
      supersedes = await session(a4!.sgcId);
      await sql`INSERT INTO server_ports (server_id, port, protocol, session_id) VALUES (${serverA}, 27041, 'TCP', ${supersedes})`;
      await hostA.start(supersedes, a4!.sgcId);
    })(),
    (async () => {
      await hostB.start(killed, b1!.sgcId);
      await Bun.sleep(300);
      await hostB.kill(killed);
    })(),
    (async () => {
      await hostB.session(cancelled, b2!.sgcId, "starting");
      for (let i = 0; i < 2; i++) {
        await Bun.sleep(TICK_MS);
        await hostB.session(cancelled, 0, "starting");
      }
      await hostB.stop(cancelled, b2!.sgcId); // the user stops it before it ever runs
    })(),
    (async () => {
      await Bun.sleep(2000);
      await hostB.offline(); // SIGTERM: offline, containers keep running
      await Bun.sleep(1500);
      await hostB.online(); // back: online, heartbeat, ticker
    })(),
  ]);
  // Let the hosts keep heartbeating past the stale thresholds once more.
  await Bun.sleep(4000);

  await waitFor(async () => (await status(crashes)).status === "crashed" && (await status(stopped)).status === "stopped", 20_000, "sessions settled");

  // Rows.
  expect(await status(crashes)).toMatchObject({ status: "crashed", exit_code: 137 });
  expect(await status(stopped)).toMatchObject({ status: "stopped", exit_code: null });
  expect(await status(failsToStart)).toMatchObject({ status: "crashed", exit_code: null, started_at: null });
  expect(await status(superseded)).toMatchObject({ status: "stopped", exit_code: null });
  expect(await status(supersedes)).toMatchObject({ status: "running", ended_at: null });
  expect(await status(killed)).toMatchObject({ status: "stopped", exit_code: null });
  expect(await status(cancelled)).toMatchObject({ status: "stopped", started_at: null });
  for (const id of [crashes, stopped, superseded, killed]) expect((await status(id)).started_at).not.toBeNull();
  for (const id of [crashes, stopped, failsToStart, superseded, killed, cancelled]) expect((await status(id)).ended_at).not.toBeNull();

  // Ports: only the running session keeps its own.
  const left = await sql`SELECT server_id, port, protocol, session_id FROM server_ports ORDER BY server_id, port`;
  expect(left.map((r) => [Number(r.server_id), r.port, r.protocol, Number(r.session_id)])).toEqual([[serverA, 27041, "TCP", supersedes]]);

  // Hosts: both online (B came back), last seen just now.
  const hosts = await sql`SELECT server_id, status, last_seen FROM servers WHERE server_id IN (${serverA}, ${serverB}) ORDER BY server_id`;
  expect(hosts.map((h) => h.status)).toEqual(["online", "online"]);

  // Backups: the completed one has the full s3 url and stamps its config; the failed one keeps its error.
  const backups = await sql`SELECT backup_id, status, s3_url, size_bytes, error_message FROM backups ORDER BY backup_id`;
  expect(backups.map((b) => ({ ...b, backup_id: Number(b.backup_id) })) as unknown[]).toEqual([
    { backup_id: backupOk, status: "completed", s3_url: `s3://${BUCKET}/backups/${a2!.sgcId}/${volume.backupConfigId}/${backupOk}.tar.gz`, size_bytes: null, error_message: null },
    { backup_id: backupBad, status: "failed", s3_url: null, size_bytes: null, error_message: "tar: /data: Cannot open: No such file or directory" },
  ]);
  const [config] = await sql`SELECT last_backup_at FROM backup_configs WHERE backup_config_id = ${volume.backupConfigId}`;
  expect(config!.last_backup_at).not.toBeNull();

  // External events, per session in order, with the row's sgc_id.
  await waitFor(() => peer.events("manman.session.").length >= 11, 10_000, "session events");
  const eventsOf = (id: number) =>
    peer.events("manman.session.").filter((e) => (e.body as { session_id: number }).session_id === id).map((e) => e.body);
  const ev = (id: number, sgc: number, s: string, exit?: number) => ({ session_id: id, sgc_id: sgc, status: s, ...(exit === undefined ? {} : { exit_code: exit }),
    // crashed and lost events carry the session's last log lines (docs/events.md)
    ...(s === "crashed" || s === "lost" ? { log_tail: expect.any(Array) } : {}) });
  expect(eventsOf(crashes)).toEqual([ev(crashes, a1!.sgcId, "running"), ev(crashes, a1!.sgcId, "crashed", 137)]);
  expect(eventsOf(stopped)).toEqual([ev(stopped, a2!.sgcId, "running"), ev(stopped, a2!.sgcId, "stopped")]);
  expect(eventsOf(failsToStart)).toEqual([ev(failsToStart, a3!.sgcId, "crashed")]);
  expect(eventsOf(superseded)).toEqual([ev(superseded, a4!.sgcId, "running"), ev(superseded, a4!.sgcId, "stopped")]);
  expect(eventsOf(supersedes)).toEqual([ev(supersedes, a4!.sgcId, "running")]);
  expect(eventsOf(killed)).toEqual([ev(killed, b1!.sgcId, "running"), ev(killed, b1!.sgcId, "stopped")]);
  expect(eventsOf(cancelled)).toEqual([ev(cancelled, b2!.sgcId, "stopped")]);
  const hostEvents = (id: number) => peer.events("manman.host.").filter((e) => (e.body as { server_id: number }).server_id === id).map((e) => e.routingKey);
  expect(hostEvents(serverA)).toEqual(["manman.host.online"]);
  expect(hostEvents(serverB)).toEqual(["manman.host.online", "manman.host.offline", "manman.host.online"]);
  expect(hostEvents(deletedHost)).toEqual([]);

  // Nothing lost, nothing dead-lettered; the deleted host was acked and counted.
  watching = false;
  await watcher;
  for (const h of [hostA, hostB, ghost]) h.stopTicking();
  expect([...everLost]).toEqual([]);
  expect(peer.events("manman.session.lost")).toEqual([]);
  expect(peer.events("manman.host.stale")).toEqual([]);
  expect(peer.deadLettered).toEqual([]);
  const metrics = processor.service.metrics;
  expect(metrics.get("manman_event_messages_total", { kind: "heartbeat", outcome: "unknown_server" })).toBeGreaterThanOrEqual(8);
  expect(metrics.get("manman_event_messages_total", { kind: "session_status", outcome: "unchanged" })).toBeGreaterThanOrEqual(8); // keepalives
  expect(metrics.get("manman_event_messages_total", { kind: "backup_status", outcome: "applied" })).toBe(2);
});
