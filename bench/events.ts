/**
 * bun run bench:events — end-to-end figures for the event processor against
 * the real broker and database on this machine. Not a test: it prints.
 *
 * 1. Throughput: a backlog of a realistic mix (85% heartbeats, 12% session
 *    transitions, 3% host status) is drained; events/s = messages / time from
 *    the processor's start of consumption to the last message committed.
 *    Run with the default settings and with PREFETCH=1 (the deployed design).
 * 2. Latency at 1,000 events/s offered: publish → committed, p50/p99.
 *
 * "Committed" is when the consumer counts the message's outcome, which it
 * does after the statement committed and before the ack.
 */
import { AMQPClient } from "@cloudamqp/amqp-client";
import postgres from "postgres";
import { Metrics, type Labels } from "../src/metrics.ts";
import { loadConfig } from "../src/config.ts";
import { createLogger } from "../src/log.ts";
import { startService } from "../src/service.ts";
import { createDatabase, createVhost } from "../test/support/services.ts";

const SERVERS = 200;
const SESSIONS = 3000;

class TimedMetrics extends Metrics {
  settled: number[] = [];
  override inc(name: string, help: string, labels: Labels = {}, by = 1): void {
    if (name === "manman_event_messages_total") this.settled.push(performance.now());
    super.inc(name, help, labels, by);
  }
}

/** The mix, as routing key + body, for `count` messages. */
function* mix(count: number, serverIds: number[], sessionIds: number[]): Generator<[string, string]> {
  const steps = ["starting", "running", "stopping", "stopped"];
  let nextSession = 0;
  let step = 0;
  for (let i = 0; i < count; i++) {
    const r = i % 100;
    if (r < 12 && nextSession < sessionIds.length) {
      // Transitions walk sessions through the machine, four in a row each
      // but interleaved with other traffic.
      const id = sessionIds[nextSession]!;
      const status = steps[step]!;
      yield [`status.session.${id}`, JSON.stringify({ session_id: id, sgc_id: id, status, ...(status === "stopped" ? { exit_code: 0 } : {}) })];
      if (++step === 4) (step = 0), nextSession++;
    } else if (r < 15) {
      const id = serverIds[i % serverIds.length]!;
      yield [`status.host.${id}`, JSON.stringify({ server_id: id, status: "online" })];
    } else {
      const id = serverIds[i % serverIds.length]!;
      yield [`health.host.${id}`, JSON.stringify({ server_id: id, session_stats: { total: 2, running: 2 } })];
    }
  }
}

async function world() {
  const [vhost, db] = await Promise.all([createVhost("bench"), createDatabase("bench")]);
  const sql = postgres(db.url, { max: 2, onnotice: () => {} });
  return { vhost, db, sql, remove: async () => { await sql.end(); await Promise.all([vhost.remove(), db.remove()]); } };
}

async function seed(sql: postgres.Sql) {
  const servers = await sql<{ server_id: string }[]>`INSERT INTO servers (name, status, last_seen) SELECT 'bench-' || g, 'online', now() FROM generate_series(1, ${SERVERS}) g RETURNING server_id`;
  const sessions = await sql<{ session_id: string }[]>`INSERT INTO sessions (sgc_id) SELECT g FROM generate_series(1, ${SESSIONS}) g RETURNING session_id`;
  return { serverIds: servers.map((r) => Number(r.server_id)), sessionIds: sessions.map((r) => Number(r.session_id)) };
}

async function start(w: Awaited<ReturnType<typeof world>>, env: Record<string, string>) {
  const loaded = loadConfig({ RABBITMQ_URL: w.vhost.url, DATABASE_URL: w.db.url, HEALTH_CHECK_PORT: "0", GRPC_PORT: "0", LOG_LEVEL: "warn", STALE_SESSION_THRESHOLD_SECONDS: "3600", STALE_HOST_THRESHOLD_SECONDS: "3600", ...env });
  if (!loaded.ok) throw new Error(loaded.problems.join("; "));
  const metrics = new TimedMetrics();
  const controller = new AbortController();
  const service = await startService({ config: loaded.config, logger: createLogger({ level: "error" }), signal: controller.signal, metrics });
  return { metrics, stop: async () => { controller.abort(); await service.stopped; } };
}

async function publisher(url: string) {
  const client = new AMQPClient(url);
  await client.connect();
  const ch = await client.channel();
  return { ch, close: () => client.close() };
}

async function until(cond: () => boolean, timeoutMs = 300_000) {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error("benchmark timed out");
    await new Promise((r) => setTimeout(r, 2));
  }
}

async function throughput(env: Record<string, string>, count: number): Promise<number> {
  const w = await world();
  try {
    // Start once to migrate and declare topology, then stop and queue a backlog.
    await (await start(w, env)).stop();
    const { serverIds, sessionIds } = await seed(w.sql);
    const pub = await publisher(w.vhost.url);
    for (const [key, body] of mix(count, serverIds, sessionIds)) await pub.ch.basicPublish("manman", key, body, { deliveryMode: 2 });
    await pub.close();
    const run = await start(w, env);
    const t0 = performance.now();
    await until(() => run.metrics.settled.length >= count);
    const seconds = (run.metrics.settled.at(-1)! - t0) / 1000;
    await run.stop();
    return count / seconds;
  } finally {
    await w.remove();
  }
}

async function latency(rate: number, seconds: number): Promise<{ p50: number; p99: number; max: number }> {
  const w = await world();
  try {
    const run = await start(w, {});
    const { serverIds, sessionIds } = await seed(w.sql);
    const pub = await publisher(w.vhost.url);
    const count = rate * seconds;
    const sent: number[] = [];
    const t0 = performance.now();
    let i = 0;
    for (const [key, body] of mix(count, serverIds, sessionIds)) {
      // Paced: message i leaves at t0 + i/rate.
      const due = t0 + (i * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      sent.push(performance.now());
      await pub.ch.basicPublish("manman", key, body, { deliveryMode: 2 });
      i++;
    }
    await until(() => run.metrics.settled.length >= count);
    await pub.close();
    await run.stop();
    // Matched by order: at this rate messages settle nearly in arrival order.
    const lat = sent.map((s, k) => run.metrics.settled[k]! - s).sort((a, b) => a - b);
    const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))]!;
    return { p50: q(0.5), p99: q(0.99), max: lat.at(-1)! };
  } finally {
    await w.remove();
  }
}

const N = Number(process.env.BENCH_MESSAGES ?? 60_000);
console.log(`event processor benchmark: ${N} messages (85% heartbeats, 12% session transitions, 3% host status), ${SERVERS} servers`);
const fast = await throughput({}, N);
console.log(`  default settings (PREFETCH=256): ${Math.round(fast).toLocaleString("en")} events/s`);
const slowN = Math.min(N, 5_000);
const slow = await throughput({ PREFETCH: "1" }, slowN);
console.log(`  PREFETCH=1 (deployed design):   ${Math.round(slow).toLocaleString("en")} events/s  (${slowN} messages)`);
console.log(`  speed-up: ${(fast / slow).toFixed(1)}x`);
const lat = await latency(1000, Number(process.env.BENCH_LATENCY_SECONDS ?? 10));
console.log(`  latency at 1,000 events/s offered, publish → committed: p50 ${lat.p50.toFixed(1)} ms, p99 ${lat.p99.toFixed(1)} ms, max ${lat.max.toFixed(1)} ms`);
process.exit(0);
