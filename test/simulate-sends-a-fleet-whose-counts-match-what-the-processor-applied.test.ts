/**
 * `manman-processor simulate` as an operator runs it (a process of its own,
 * the configured broker and database) against a running processor: what it
 * reports having sent is what the broker carried, kind by kind; its hosts
 * and sessions are rows the processor moved (hosts offline at the end,
 * sessions ended as it says they ended); every log line reached the
 * processor's buffer; nothing was dead-lettered. Then the same with
 * --upstream-exact: stdout lines only, no host lines, in batches.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { AMQPClient, type AMQPMessage } from "@cloudamqp/amqp-client";
import { BrokerPeer, startProcessor, testWorld, waitFor, type RunningProcessor } from "./support/processor.ts";

// Two 10 s runs, the processor catching up, on a busy 2-core machine.
setDefaultTimeout(120_000);
const ROOT = join(import.meta.dir, "..");

let world: Awaited<ReturnType<typeof testWorld>>;
let processor: RunningProcessor;
let peer: BrokerPeer;
let tap: AMQPClient;
const carried: AMQPMessage[] = [];

beforeAll(async () => {
  world = await testWorld("simulate");
  processor = await startProcessor(world.vhost, world.db, { LOG_LEVEL: "warn" });
  peer = await BrokerPeer.connect(world.vhost.url);
  // Everything published to manman, as the broker routes it.
  tap = new AMQPClient(world.vhost.url);
  await tap.connect();
  const ch = await tap.channel();
  const q = await ch.queueDeclare("", { exclusive: true, autoDelete: true });
  await ch.queueBind(q.name, "manman", "#");
  await ch.basicConsume(q.name, { noAck: true }, (m) => void carried.push(m));
});
afterAll(async () => {
  await tap?.close().catch(() => {});
  await peer?.close();
  await processor?.stop();
  await world?.remove();
});

function simulate(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [join(ROOT, "src/main.ts"), "simulate", ...args], {
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", RABBITMQ_URL: world.vhost.url, DATABASE_URL: world.db.url },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (c: Buffer) => (stdout += c.toString()));
  child.stderr!.on("data", (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve) => child.on("exit", (code) => resolve({ code, stdout, stderr })));
}

interface Reported {
  host_status: number;
  heartbeat: number;
  session_status: number;
  log_line: number;
  created: number;
  stopped: number;
  crashed: number;
  killed: number;
  failed: number;
}

function parseReport(stdout: string): Reported {
  const sent = stdout.match(/sent in [\d.]+ s: (\d+) host status, (\d+) heartbeats?, (\d+) session status, ([\d,]+) log lines \((\d+) lines\/s of 200 asked\)/);
  const sessions = stdout.match(/sessions: (\d+) created; (\d+) stopped, (\d+) crashed, (\d+) killed, (\d+) failed to start; /);
  if (!sent || !sessions) throw new Error(`no report in: ${stdout}`);
  const n = (s: string) => Number(s.replace(/,/g, ""));
  return {
    host_status: n(sent[1]!), heartbeat: n(sent[2]!), session_status: n(sent[3]!), log_line: n(sent[4]!),
    created: n(sessions[1]!), stopped: n(sessions[2]!), crashed: n(sessions[3]!), killed: n(sessions[4]!), failed: n(sessions[5]!),
  };
}

const kindOf = (key: string) => (key.startsWith("logs.") ? "log_line" : key.startsWith("health.") ? "heartbeat" : key.startsWith("status.host.") ? "host_status" : "session_status");
const bodies = (kind: string) => carried.filter((m) => kindOf(m.routingKey) === kind).map((m) => JSON.parse(m.bodyString()!) as Record<string, unknown>);

async function runAndCheck(args: string[]): Promise<Reported> {
  carried.length = 0;
  const ingestedBefore = processor.service.metrics.total("manman_log_lines_ingested_total");
  const before = await world.sql<{ session_id: string }[]>`SELECT session_id FROM sessions`;
  const run = await simulate(["--hosts", "2", "--sessions", "4", "--lines-per-second", "200", "--duration", "10", ...args]);
  expect(run.code).toBe(0);
  const r = parseReport(run.stdout);
  // What it says it sent is what the broker carried, kind by kind.
  await waitFor(() => carried.length === r.host_status + r.heartbeat + r.session_status + r.log_line, 20_000, "every message in the tap");
  for (const kind of ["host_status", "heartbeat", "session_status", "log_line"] as const) expect(carried.filter((m) => kindOf(m.routingKey) === kind).length).toBe(r[kind]);
  expect(r.log_line).toBeGreaterThan(500); // 200 lines/s for 10 s, while sessions run
  expect(r.host_status).toBe(4); // each host: online, then offline
  expect(r.heartbeat).toBeGreaterThanOrEqual(4); // at once and every 5 s
  expect(r.created).toBeGreaterThanOrEqual(4);
  for (const m of carried) {
    expect(m.properties.contentType).toBe("application/json");
    expect(m.properties.deliveryMode).toBe(2);
  }

  // The rows: two hosts, offline at the end and seen; the sessions it created, ended as it says.
  const servers = await world.sql<{ name: string; status: string; last_seen: Date | null }[]>`SELECT name, status, last_seen FROM servers ORDER BY name`;
  expect(servers.map((s) => s.name)).toEqual(["sim-host-1", "sim-host-2"]);
  await waitFor(async () => (await world.sql`SELECT 1 FROM servers WHERE status = 'offline' AND last_seen IS NOT NULL`).length === 2, 20_000, "both hosts offline");
  const known = new Set(before.map((b) => b.session_id));
  const rows = async () => (await world.sql<{ session_id: string; status: string }[]>`SELECT session_id, status FROM sessions`).filter((s) => !known.has(s.session_id));
  expect((await rows()).length).toBe(r.created);
  const statuses = async () => {
    const count: Record<string, number> = {};
    for (const s of await rows()) count[s.status] = (count[s.status] ?? 0) + 1;
    return count;
  };
  await waitFor(async () => {
    const c = await statuses();
    return (c.stopped ?? 0) === r.stopped + r.killed && (c.crashed ?? 0) === r.crashed + r.failed;
  }, 20_000, `ended sessions as reported (${JSON.stringify(r)})`).catch(async (err) => {
    throw new Error(`${err}; rows: ${JSON.stringify(await statuses())}`);
  });
  // Every line reached the processor's buffer; nothing was dead-lettered.
  await waitFor(() => processor.service.metrics.total("manman_log_lines_ingested_total") - ingestedBefore === r.log_line, 20_000, "every line ingested");
  expect(peer.deadLettered).toEqual([]);
  return r;
}

test("simulate's report matches what the broker carried, the rows the processor moved and the lines it took in", async () => {
  await runAndCheck([]);
  const lines = bodies("log_line");
  expect(lines.some((l) => l.source === "stderr")).toBe(true);
  expect(lines.some((l) => l.source === "host")).toBe(true);
  expect(lines.some((l) => String(l.message).includes("\x1b["))).toBe(true);
});

test("with --upstream-exact it sends what a deployed host manager does: stdout lines in batches, no host lines", async () => {
  const r = await runAndCheck(["--upstream-exact"]);
  const lines = bodies("log_line");
  expect(lines.every((l) => l.source === "stdout")).toBe(true);
  // Batched: a flush stamps its lines with one time, so times repeat.
  expect(new Set(lines.map((l) => `${l.session_id}:${l.timestamp}`)).size).toBeLessThan(lines.length / 5);
  // Bodies as Go marshals them: field order, sgc_id 0 in the keepalive or a kill, exit_code only when known.
  for (const m of carried.filter((c) => kindOf(c.routingKey) === "session_status")) expect(m.bodyString()).toMatch(/^\{"session_id":\d+,"sgc_id":\d+,"status":"(starting|running|stopping|stopped|crashed)"(,"exit_code":\d+)?\}$/);
  for (const m of carried.filter((c) => kindOf(c.routingKey) === "heartbeat")) expect(m.bodyString()).toMatch(/^\{"server_id":\d+,"session_stats":\{"total":\d+,"pending":0,"starting":\d+,"running":\d+,"stopping":\d+,"stopped":0,"crashed":0\}\}$/);
  expect(r.log_line).toBe(lines.length);
});
