/**
 * `bun run bench:archive` — the log archive end to end (issue 10 point 8),
 * against the real broker, database and (for S3) s3rver on this machine,
 * each figure beside its ceiling measured in the same run. Not a test: it
 * prints figures (docs/archive.md, Benchmark).
 *
 * For each store (the directory, then S3 on an s3rver started as the tests
 * start it), on a fresh vhost and database, N lines of S sessions (80–120 B
 * messages dated over four minutes that ended ten minutes ago, so every
 * minute may be written as soon as it is held: bench/archive-load.ts):
 *
 * - live: the whole service runs (a child process: its RSS and CPU are its
 *   own); this process publishes N lines as fast as the broker takes them
 *   and polls log_references every 50 ms until the complete rows hold all N.
 *   lines/s = N / (last row complete − first publish); per line, row
 *   complete − publish (to the poll's 50 ms) as p50/p99.
 * - backlog: N lines of S other sessions are queued while no service runs
 *   (an outage, a deploy), then a service starts: lines/s from its first
 *   take from the queue to the last row complete.
 *
 * The ceiling of each: the same lines, published the same way, through the
 * same broker work (a durable queue with the archive's prefetch and a
 * multiple-ack every tenth of it, and a bounded no-ack queue as the live
 * ingest's), to consumers that do nothing (bench/archive.ts --ceiling).
 *
 * Environment: BENCH_LINES (200000), BENCH_SESSIONS (20), BENCH_STORES
 * (directory,s3), BENCH_SHAPES (live,backlog), BENCH_PROFILE (a directory:
 * the service writes its CPU profile there, markdown), BENCH_TIMEOUT_SECONDS
 * (100 per phase: a phase stops there and prints what it got),
 * BENCH_BROKER_WORK (1: RabbitMQ's work a line in reductions, per queue,
 * archive-broker.ts), BENCH_COUNT_ACKS (1: the service prints how many
 * multiple and single acks it sent), BENCH_LIVE_DATED (now: the live lines
 * are dated from this minute on, held for their grace or an early cut),
 * BENCH_MAX_PENDING_LINES (the service's
 * LOG_ARCHIVE_MAX_PENDING_LINES; the ceiling keeps a prefetch of 20,000).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { AMQPClient } from "@cloudamqp/amqp-client";
import postgres from "postgres";
import { ARCHIVE_QUEUE } from "../src/amqp/archive-queue.ts";
import { brokerWork, countAcks, workPerLine } from "./archive-broker.ts";
import { brokerCpuMs, CEILING_QUEUE, ceilingConsumer, child, cpuMeter, cpuMs, declareCeilingQueue, fmt, memoryMb, next, pct, plan, publishAll, queued, stop, wall, type Child, type Plan } from "./archive-load.ts";

const PREFETCH = 20_000; // LOG_ARCHIVE_MAX_PENDING_LINES' default: the archive's prefetch
const POLL_MS = 50; // how often log_references is read: the resolution of the figures
// Issue 10 point 8's live targets on the 2-core box with everything on it.
const LIVE_TARGET = { directory: 40_000, s3: 20_000 } as const;

/**
 * Whether live met its target, and what the target asks of this box: the
 * broker's CPU a line in the same run's do-nothing ceiling, times the
 * target, is the cores RabbitMQ alone would need at that rate, before the
 * publisher, the service and PostgreSQL get any.
 */
function verdict(target: number, rate: number, ceil: Ceiling): string {
  const cores = (ceil.brokerUsPerLine * target) / 1e6;
  const cpus = navigator.hardwareConcurrency;
  return `target ≥ ${fmt(target)} lines/s: ${rate >= target ? "met" : "NOT met"} (${fmt(rate)}); ` +
    `this run's do-nothing ceiling ${fmt(ceil.rate)} lines/s is ${ceil.rate >= target ? "above" : "below"} it, and RabbitMQ alone at its ${ceil.brokerUsPerLine.toFixed(1)} µs a line ` +
    `would need ${cores.toFixed(2)} of this box's ${cpus} cores at ${fmt(target)} lines/s`;
}

/** Child: the whole service, as src/main.ts runs it, with the settings in the environment. */
async function serve(): Promise<void> {
  const { loadConfig } = await import("../src/config.ts");
  const { createLogger } = await import("../src/log.ts");
  const { startService } = await import("../src/service.ts");
  const loaded = loadConfig({ ...process.env, HEALTH_CHECK_PORT: "0", GRPC_PORT: "0" });
  if (!loaded.ok) throw new Error(loaded.problems.join("\n"));
  const controller = new AbortController();
  const logger = createLogger({ level: "warn", write: (line) => void process.stderr.write(line) });
  const acks = await countAcks();
  const service = await startService({ config: loaded.config, logger, signal: controller.signal });
  process.on("SIGTERM", () => {
    if (acks) process.stderr.write(`service sent ${acks.multiple} multiple acks, ${acks.single} single acks\n`);
    controller.abort();
    void service.stopped.then(() => process.exit(0));
  });
  process.stdout.write(JSON.stringify({ ready: service.httpPort }) + "\n");
}

/** The ceiling's lines/s, its do-nothing consumer's CPU per line (the floor of any consumer on amqp-client) and the broker's. */
interface Ceiling {
  rate: number;
  usPerLine: number;
  brokerUsPerLine: number;
  work: string;
}

interface Phase {
  rate: number;
  /** lines/s from 10% to 90% of the lines archived: the rate without the start and the tail (the last cut waits for the 1 s tick). */
  steady: number;
  seconds: number;
  archived: number;
  objects: number;
  latencies: number[];
  publishRate: number;
  cpu: string;
  /** RabbitMQ's reductions a line (BENCH_BROKER_WORK), or "". */
  work: string;
}

/**
 * Live: publishes `p` to the running service. Backlog (`svc` a function):
 * publishes `p` while no service runs, then starts one. Either way polls
 * until `p`'s sessions' complete rows hold every line; the clock starts at
 * the first publish (live) or when the service starts taking the backlog
 * from the queue (its ready count first drops; polled every 10 ms).
 */
async function archivePhase(sql: postgres.Sql, url: string, vhost: string, running: Child | (() => Promise<Child>), p: Plan, timeoutMs: number): Promise<Phase & { svc: Child }> {
  const n = p.bodies.length;
  const s = p.sessionIds.length;
  const live = typeof running !== "function";
  let svc = live ? running : undefined;
  const sentAt = new Float64Array(n);
  const keyOf = (j: number) => `logs.session.${p.sessionIds[j % s]}`;
  let t0 = wall();
  let publishRate = NaN;
  const measured = Promise.withResolvers<void>();
  let work0 = brokerWork(vhost);
  if (live) {
    t0 = wall();
    void publishAll(url, keyOf, p.bodies, { sentAt, sent: (at) => (publishRate = n / ((at - t0) / 1000)), keepOpen: measured.promise });
  } else {
    publishRate = n / ((wall() - (await publishAll(url, keyOf, p.bodies))) / 1000);
    await queued(url, ARCHIVE_QUEUE, n);
    work0 = brokerWork(vhost);
    svc = await (running as () => Promise<Child>)();
    const client = await new AMQPClient(url).connect();
    const ch = await client.channel();
    while ((await ch.queueDeclare(ARCHIVE_QUEUE, { passive: true })).messageCount >= n) await Bun.sleep(10);
    t0 = wall();
    await client.close();
  }
  const meter = cpuMeter(svc!.proc.pid!);
  const index = new Map(p.sessionIds.map((id, i) => [id, i]));
  const seen = new Set<string>();
  const latencies: number[] = [];
  let archived = 0;
  let last = t0;
  let t10: number | undefined;
  let t90: number | undefined;
  while (archived < n && wall() < t0 + timeoutMs) {
    await Bun.sleep(POLL_MS);
    const rows = await sql<{ log_id: string; session_id: string; s: string; e: string; line_count: number }[]>`
      SELECT log_id, session_id, line_count,
             (extract(epoch FROM start_time) * 1000)::bigint AS s, (extract(epoch FROM end_time) * 1000)::bigint AS e
      FROM log_references WHERE state = 'complete' AND session_id = ANY(${p.sessionIds})`;
    const now = wall();
    for (const r of rows) {
      if (seen.has(r.log_id)) continue;
      seen.add(r.log_id);
      archived += r.line_count;
      last = now;
      if (archived >= n / 10) t10 ??= now;
      if (archived >= (n * 9) / 10) t90 ??= now;
      if (!live) continue;
      // The row holds its session's lines dated [s, e] (a session's lines have distinct times).
      const si = index.get(Number(r.session_id))!;
      for (let k = Math.ceil((Number(r.s) - p.base) / p.stepMs); p.base + k * p.stepMs <= Number(r.e); k++) latencies.push(now - sentAt[k * s + si]!);
    }
  }
  const seconds = ((archived >= n ? last : wall()) - t0) / 1000;
  const cpu = meter.done(seconds, archived);
  const work = workPerLine(work0, brokerWork(vhost), archived);
  measured.resolve();
  while (Number.isNaN(publishRate)) await Bun.sleep(POLL_MS);
  const steady = t10 !== undefined && t90 !== undefined && t90 > t10 ? (0.8 * n) / ((t90 - t10) / 1000) : NaN;
  return { rate: archived / seconds, steady, seconds, archived, objects: seen.size, latencies: latencies.sort((a, b) => a - b), publishRate, cpu, work, svc: svc! };
}

/**
 * The ceiling's rate for one round of `p`. Live: the consumer runs while
 * `p` is published. Backlog (`start`): `p` is published first (into the
 * durable queue the live round declared), then the consumer is started;
 * its clock starts when it consumes.
 */
async function ceilingPhase(url: string, vhost: string, p: Plan, timeoutMs: number, start: () => Promise<Child>, live: Child | undefined): Promise<Ceiling> {
  const n = p.bodies.length;
  const keyOf = (j: number) => `ceiling.session.${p.sessionIds[j % p.sessionIds.length]}`;
  if (live) {
    const work0 = brokerWork(vhost);
    const [cpu0, broker0] = [cpuMs(live.proc.pid!), brokerCpuMs()];
    const measured = Promise.withResolvers<void>();
    const sentAt = new Float64Array(n);
    void publishAll(url, keyOf, p.bodies, { sentAt, keepOpen: measured.promise });
    const rate = n / (((await next(live, timeoutMs)).done! - sentAt[0]!) / 1000);
    const [usPerLine, brokerUsPerLine] = [((cpuMs(live.proc.pid!) - cpu0) * 1000) / n, ((brokerCpuMs() - broker0) * 1000) / n];
    const work = workPerLine(work0, brokerWork(vhost), n);
    measured.resolve();
    return { rate, usPerLine, brokerUsPerLine, work };
  }
  const client = await new AMQPClient(url).connect();
  await declareCeilingQueue(await client.channel());
  await client.close();
  await publishAll(url, keyOf, p.bodies);
  await queued(url, CEILING_QUEUE, n);
  const work0 = brokerWork(vhost); // before the consumer starts: the snapshot blocks this process ~0.5 s
  const c = await start();
  const { ready } = await next(c, 20_000);
  const [cpu0, broker0] = [cpuMs(c.proc.pid!), brokerCpuMs()];
  const rate = n / (((await next(c, timeoutMs)).done! - ready!) / 1000);
  const usPerLine = ((cpuMs(c.proc.pid!) - cpu0) * 1000) / n;
  const brokerUsPerLine = ((brokerCpuMs() - broker0) * 1000) / n;
  const work = workPerLine(work0, brokerWork(vhost), n);
  await stop(c, 1_000);
  return { rate, usPerLine, brokerUsPerLine, work };
}

async function runStore(kind: "directory" | "s3", n: number, sessions: number, timeoutMs: number, shapes: Set<string>): Promise<void> {
  const { createDatabase, createVhost } = await import("../test/support/services.ts");
  const { startS3Server, createBucket, removeBucket } = await import("../test/support/s3.ts");
  const [vhost, db] = await Promise.all([createVhost("mmbench_archive"), createDatabase("mmbench_archive")]);
  const dir = await mkdtemp(join(tmpdir(), "bench-archive-"));
  const s3 = kind === "s3" ? await startS3Server() : undefined;
  const bucket = s3 ? await createBucket(s3, "bench") : undefined;
  const sql = postgres(db.url, { max: 2, onnotice: () => {} });
  const children: Child[] = [];
  try {
    // The ceilings first, on the same vhost, before the service exists.
    const startCeiling = async () => {
      const c = child(import.meta.path, ["--ceiling", vhost.url, String(n)], process.env);
      children.push(c);
      return c;
    };
    const fake = Array.from({ length: sessions }, (_, i) => 1 + i);
    let liveCeiling: Ceiling | undefined;
    if (shapes.has("live")) {
      const c = await startCeiling();
      await next(c, 20_000);
      liveCeiling = await ceilingPhase(vhost.url, vhost.vhost, plan(n, fake), timeoutMs, startCeiling, c);
      await stop(c, 1_000);
    }
    const backlogCeiling = shapes.has("backlog") ? await ceilingPhase(vhost.url, vhost.vhost, plan(n, fake), timeoutMs, startCeiling, undefined) : undefined;

    const env: Record<string, string | undefined> = {
      ...process.env,
      RABBITMQ_URL: vhost.url,
      DATABASE_URL: db.url,
      LOG_ARCHIVE_DIR: dir,
      LOG_LEVEL: "warn",
      LOG_ARCHIVE_MAX_PENDING_LINES: process.env.BENCH_MAX_PENDING_LINES ?? String(PREFETCH),
      // No session goes stale (lost, so written at once) during the run.
      STALE_SESSION_THRESHOLD_SECONDS: "3600",
      S3_BUCKET: undefined,
      S3_ENDPOINT: undefined,
    };
    if (s3) Object.assign(env, { S3_BUCKET: bucket, S3_ENDPOINT: s3.endpoint, S3_REGION: s3.region, S3_ACCESS_KEY: s3.accessKeyId, S3_SECRET_KEY: s3.secretAccessKey });
    const profile = process.env.BENCH_PROFILE ? ["--cpu-prof-md", `--cpu-prof-dir=${join(process.env.BENCH_PROFILE, kind)}`] : [];
    const startService = async () => {
      const svc = child(import.meta.path, ["--server"], env, profile);
      children.push(svc);
      await next(svc, 60_000);
      return svc;
    };
    // The first start makes the tables and the archive queue.
    const first = await startService();
    const idle = memoryMb(first.proc.pid!, "VmRSS");
    const ids = (await sql<{ id: string }[]>`
      INSERT INTO sessions (sgc_id, status, started_at) SELECT 100 + g, 'running', now() FROM generate_series(1, ${2 * sessions}) g RETURNING session_id AS id`).map((r) => Number(r.id));
    // BENCH_LIVE_DATED=now: the live lines are dated from this minute on (over four minutes), so none is past its grace and the archive holds them until an early cut (or 75 s).
    const liveEndedAgoMs = process.env.BENCH_LIVE_DATED === "now" ? -4 * 60_000 : undefined;
    const workLines = (ph: Phase, ceil: Ceiling) => (ph.work ? [`    ${ph.work}`, `    ceiling's ${ceil.work}`] : []);
    const out = [`${kind}: service RSS idle ${idle.toFixed(0)} MB`];
    const line = (name: string, ph: Phase, ceil: Ceiling) =>
      `  ${name}: ${fmt(ph.archived)} of ${fmt(n)} lines in ${ph.seconds.toFixed(2)} s = ${fmt(ph.rate)} lines/s${ph.archived < n ? " (TIMED OUT)" : ""} (10%→90%: ${fmt(ph.steady)} lines/s)` +
      ` in ${fmt(ph.objects)} objects; ceiling ${fmt(ceil.rate)} lines/s (its consumer ${ceil.usPerLine.toFixed(1)} µs a line, RabbitMQ ${ceil.brokerUsPerLine.toFixed(1)}); archive/ceiling ${((ph.rate / ceil.rate) * 100).toFixed(0)}%`;
    if (liveCeiling) {
      const live = await archivePhase(sql, vhost.url, vhost.vhost, first, plan(n, ids.slice(0, sessions), liveEndedAgoMs), timeoutMs);
      out.push(
        line("live   ", live, liveCeiling),
        `    published at ${fmt(live.publishRate)} lines/s; row complete − publish p50 ${fmt(pct(live.latencies, 0.5))} ms, p99 ${fmt(pct(live.latencies, 0.99))} ms; peak RSS ${memoryMb(first.proc.pid!, "VmHWM").toFixed(0)} MB`,
        `    ${live.cpu}`,
        `    ${verdict(LIVE_TARGET[kind], live.rate, liveCeiling)}`,
        ...workLines(live, liveCeiling),
      );
    }
    await stop(first, process.env.BENCH_PROFILE ? 10_000 : 5_000);
    if (backlogCeiling) {
      // Other sessions, other minutes, queued while no service runs.
      const backlog = await archivePhase(sql, vhost.url, vhost.vhost, startService, plan(n, ids.slice(sessions), 20 * 60_000), timeoutMs);
      out.push(line("backlog", backlog, backlogCeiling) + `; peak RSS ${memoryMb(backlog.svc.proc.pid!, "VmHWM").toFixed(0)} MB`, `    ${backlog.cpu}`, ...workLines(backlog, backlogCeiling));
    }
    console.log(out.join("\n"));
  } finally {
    for (const c of children) await stop(c, process.env.BENCH_PROFILE ? 10_000 : 2_000);
    await sql.end({ timeout: 1 });
    if (s3 && bucket) await removeBucket(s3, bucket).catch(() => {});
    await s3?.stop();
    await Promise.all([vhost.remove(), db.remove(), rm(dir, { recursive: true, force: true })]);
  }
}

async function main(): Promise<void> {
  const n = Number(process.env.BENCH_LINES ?? 200_000);
  const sessions = Number(process.env.BENCH_SESSIONS ?? 20);
  const stores = (process.env.BENCH_STORES ?? "directory,s3").split(",") as ("directory" | "s3")[];
  const timeoutMs = Number(process.env.BENCH_TIMEOUT_SECONDS ?? 100) * 1000;
  console.log(`manman-processor archive benchmark (bun ${Bun.version}, ${navigator.hardwareConcurrency} cores): ${fmt(n)} lines of ${sessions} sessions per phase, 80–120 B messages`);
  const shapes = new Set((process.env.BENCH_SHAPES ?? "live,backlog").split(","));
  for (const kind of stores) await runStore(kind, n, sessions, timeoutMs, shapes);
  process.exit(0);
}

// Last: everything above is defined by now.
const mode = process.argv[2];
if (mode === "--server") await serve();
else if (mode === "--ceiling") await ceilingConsumer(process.argv[3]!, Number(process.argv[4]), PREFETCH);
else await main();
