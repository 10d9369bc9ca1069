/**
 * `bun run bench:events` — end-to-end figures for the event processor
 * against the real broker and database on this machine (docs/performance.md).
 * Not a test: it prints. The service runs in a child process as
 * src/main.ts runs it (log at LOG_LEVEL, info by default, to a file), so
 * its CPU and RSS are its own.
 *
 * 1. Throughput: a backlog of a realistic mix (85% heartbeats, 12% session
 *    transitions, 3% host status; bench/events-load.ts) is queued while no
 *    service runs, then a service drains it: events/s = messages / time from
 *    its start to the last message committed ("committed": counted, which
 *    the consumer does after the statement committed, before the ack).
 *    With the default settings, and with PREFETCH=1 (the deployed design).
 * 2. The ceiling, in the same run: the same backlog drained from the same
 *    queue by a consumer that does nothing, with the same prefetch and
 *    multiple-acks every tenth of it. The ratio says how close to the limit
 *    of the broker and client the service is.
 * 3. Latency at 2,000 events/s offered (BENCH_RATE): publish → committed,
 *    p50/p99, for BENCH_LATENCY_SECONDS (10), after BENCH_WARMUP_SECONDS (2)
 *    at the same rate printed apart (the service's cold start).
 *    BENCH_TRACE=1 also prints where the slowest 1% spent their time
 *    (bench/events-trace.ts).
 * 4. `--curve` (or BENCH_MODE=curve): doubles the offered rate from
 *    BENCH_CURVE_START (500/s), BENCH_CURVE_SECONDS (5) each, until p99
 *    passes 100 ms (or the service falls well behind), and prints the curve.
 *
 * Environment: BENCH_PHASES (throughput,prefetch1,latency: which to run),
 * BENCH_MESSAGES (60000), BENCH_PREFETCH1_MESSAGES (5000), BENCH_SERVERS (200),
 * BENCH_PROFILE (a directory: the default-settings drain writes a CPU
 * profile there, markdown and .cpuprofile), BENCH_LOG_LEVEL (info),
 * BENCH_ENV (extra settings for the service, "A=1,B=2").
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { child, cpuMeter, cpuMs, fmt, memoryMb, next, pct, queued, stop, type Child } from "./archive-load.ts";
import { ceilingChild, mix, publishBacklog, publishPaced, QUEUE, seedServers, seedSessions, serveChild } from "./events-load.ts";

const CURVE_P99_LIMIT_MS = 100;

interface World {
  url: string;
  env: Record<string, string | undefined>;
  sql: postgres.Sql;
  serverIds: number[];
  logFile: string;
  remove(): Promise<void>;
}

async function world(): Promise<World> {
  const { createDatabase, createVhost } = await import("../test/support/services.ts");
  const [vhost, db] = await Promise.all([createVhost("mmbench_events"), createDatabase("mmbench_events")]);
  const dir = await mkdtemp(join(tmpdir(), "bench-events-"));
  const extra = Object.fromEntries((process.env.BENCH_ENV ?? "").split(",").filter(Boolean).map((kv) => kv.split("=") as [string, string]));
  const env = {
    ...process.env, RABBITMQ_URL: vhost.url, DATABASE_URL: db.url, LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? "info",
    // No session or host goes stale during the run.
    STALE_SESSION_THRESHOLD_SECONDS: "3600", STALE_HOST_THRESHOLD_SECONDS: "3600", ...extra,
  };
  const logFile = join(dir, "service.log");
  // The first start makes the tables and declares the queue.
  const first = await service({ env, logFile }, {});
  await stop(first, 5_000);
  const sql = postgres(db.url, { max: 2, onnotice: () => {} });
  const serverIds = await seedServers(sql);
  const remove = async () => {
    await sql.end({ timeout: 1 });
    await Promise.all([vhost.remove(), db.remove(), rm(dir, { recursive: true, force: true })]);
  };
  return { url: vhost.url, env, sql, serverIds, logFile, remove };
}

async function service(w: Pick<World, "env" | "logFile">, env: Record<string, string>, rounds: number[] = [], flags: string[] = []): Promise<Child & { ready: number; cpu: number }> {
  const c = child(import.meta.path, ["--server"], { ...w.env, ...env, BENCH_ROUNDS: rounds.join(","), BENCH_LOG_FILE: w.logFile }, flags);
  const { ready, cpu } = await next(c, 60_000);
  return { ...c, ready: ready!, cpu: cpu! };
}

interface Drain {
  rate: number;
  /** Frames to the broker per message (the service only). */
  frames: string;
  seconds: number;
  usPerMessage: number;
  cpu: string;
  rssMb: number;
}

/** Queues `n` messages of the mix, then drains them with a service (or the ceiling). */
async function drain(w: World, n: number, who: "service" | "ceiling", env: Record<string, string> = {}, flags: string[] = []): Promise<Drain> {
  const sessionIds = await seedSessions(w.sql, n);
  await publishBacklog(w.url, mix(n, w.serverIds, sessionIds));
  await queued(w.url, QUEUE, n);
  const prefetch = env.PREFETCH ?? w.env.PREFETCH ?? "1024";
  // Before the service starts: its few start-up transactions are counted too.
  const commits0 = await commits(w.sql);
  const c = who === "service" ? await service(w, env, [n], flags) : child(import.meta.path, ["--ceiling", w.url, prefetch, String(n)], w.env);
  const { ready, cpu: cpu0 } = who === "service" ? (c as Awaited<ReturnType<typeof service>>) : await next(c, 20_000);
  const meter = cpuMeter(c.proc.pid!);
  const backends0 = await backendCpu(w.sql);
  const done = await next(c, 600_000);
  const backends1 = await backendCpu(w.sql);
  const last = who === "service" ? (done.times as unknown as number[]).at(-1)! : done.done!;
  const first = who === "service" ? Math.min(ready!, (done.times as unknown as number[])[0]!) : ready!;
  const seconds = (last - first) / 1000;
  const rssMb = memoryMb(c.proc.pid!, "VmHWM");
  const cpu = meter.done(seconds, n).replace(/service/, who === "service" ? "service" : "do-nothing consumer").replace(/µs a line/g, "µs a message").replace(/, s3rver \(node\) -?\d+%/, "");
  await stop(c, flags.length ? 15_000 : 5_000);
  const perMessage = (x: number) => (x / n).toFixed(3);
  let backendMs = 0;
  for (const [pid, ms] of backends1) backendMs += ms - (backends0.get(pid) ?? 0);
  const transactions = who === "service" ? `; database transactions a message: ${perMessage((await commits(w.sql)) - commits0)}, its backends' CPU ${((backendMs * 1000) / n).toFixed(1)} µs a message` : "";
  const frames = who === "service" ? `frames to the broker a message: ${perMessage(done.ackMultiple!)} multiple-acks, ${perMessage(done.ackSingle!)} single acks, ${perMessage(done.publish!)} publishes${transactions}` : "";
  return { frames, rate: n / seconds, seconds, usPerMessage: ((done.cpu! - cpu0!) * 1000) / n, cpu, rssMb };
}

/**
 * CPU ms of each PostgreSQL backend connected to the bench's database (the
 * service's pool, the bench's own): unlike the box-wide PostgreSQL share, it
 * leaves out other databases' work on a shared machine.
 */
async function backendCpu(sql: postgres.Sql): Promise<Map<number, number>> {
  const rows = await sql<{ pid: number }[]>`SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`;
  const out = new Map<number, number>();
  for (const { pid } of rows) {
    try {
      out.set(pid, cpuMs(pid));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Transactions committed in the bench's database so far (the statistics lag up to a second: read after a pause). */
async function commits(sql: postgres.Sql): Promise<number> {
  await Bun.sleep(1_000);
  const [row] = await sql<{ n: string }[]>`SELECT xact_commit AS n FROM pg_stat_database WHERE datname = current_database()`;
  return Number(row!.n);
}

interface Paced {
  offered: number;
  achieved: number;
  p50: number;
  p99: number;
  max: number;
}

/** Each of `rates` in turn for `seconds` to one running service: publish → committed. */
async function paced(w: World, rates: number[], seconds: number[], keepGoing: (p: Paced) => boolean = () => true): Promise<{ steps: Paced[]; usPerMessage: number; rssMb: number }> {
  const counts = rates.map((r, k) => Math.round(r * seconds[k]!));
  const svc = await service(w, {}, counts);
  const steps: Paced[] = [];
  // The last step's CPU alone (the latency phase's warm-up costs more: the JIT).
  let cpu = svc.cpu;
  try {
    for (const [k, rate] of rates.entries()) {
      const n = counts[k]!;
      const messages = [...mix(n, w.serverIds, await seedSessions(w.sql, n))];
      const sentAt = new Float64Array(n);
      const offered = await publishPaced(w.url, messages, rate, sentAt);
      const done = await next(svc, 600_000);
      const times = done.times as unknown as number[];
      // Matched by order: the k-th message committed against the k-th sent.
      const lat = times.map((t, j) => t - sentAt[j]!).sort((a, b) => a - b);
      const achieved = n / ((times.at(-1)! - sentAt[0]!) / 1000);
      if (done.trace) (await import("./events-trace.ts")).reportTrace(done.trace as never, sentAt);
      const step = { offered, achieved, p50: pct(lat, 0.5), p99: pct(lat, 0.99), max: lat.at(-1)! };
      steps.push(step);
      if (k < rates.length - 1 && keepGoing(step)) cpu = done.cpu!;
      if (k === rates.length - 1 || !keepGoing(step)) {
        const usPerMessage = ((done.cpu! - cpu) * 1000) / n;
        return { steps, usPerMessage, rssMb: memoryMb(svc.proc.pid!, "VmHWM") };
      }
    }
    throw new Error("unreachable");
  } finally {
    await stop(svc, 5_000);
  }
}

const ms = (x: number) => `${x.toFixed(1)} ms`;

async function main(): Promise<void> {
  const n = Number(process.env.BENCH_MESSAGES ?? 60_000);
  const curve = process.argv.includes("--curve") || process.env.BENCH_MODE === "curve";
  const w = await world();
  try {
    console.log(`manman-processor event benchmark (bun ${Bun.version}, ${navigator.hardwareConcurrency} cores, LOG_LEVEL=${w.env.LOG_LEVEL}): mix of 85% heartbeats, 12% session transitions, 3% host status, ${w.serverIds.length} servers`);
    if (curve) return await growth(w);
    const phases = new Set((process.env.BENCH_PHASES ?? "throughput,prefetch1,latency").split(","));
    if (phases.has("throughput")) await throughputPhase(w, n);
    if (phases.has("prefetch1")) await prefetch1Phase(w, n);
    if (phases.has("latency")) await latencyPhase(w);
  } finally {
    await w.remove();
  }
}

/** The default settings' drain beside the ceiling's (kept for the PREFETCH=1 ratio). */
let fastRate = NaN;

async function throughputPhase(w: World, n: number): Promise<void> {
  const ceiling = await drain(w, n, "ceiling");
  const profile = process.env.BENCH_PROFILE ? ["--cpu-prof", "--cpu-prof-md", `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : [];
  const fast = await drain(w, n, "service", {}, profile);
  fastRate = fast.rate;
  console.log(
    [
      `  throughput, a backlog of ${fmt(n)} messages, PREFETCH=${w.env.PREFETCH ?? 1024}: ${fmt(fast.rate)} events/s (${fast.seconds.toFixed(2)} s)`,
      `    ceiling (do-nothing consumer, same queue, prefetch and multiple-acks): ${fmt(ceiling.rate)} events/s; service/ceiling ${((fast.rate / ceiling.rate) * 100).toFixed(0)}%`,
      `    service: ${fast.usPerMessage.toFixed(1)} µs CPU a message, peak RSS ${fast.rssMb.toFixed(0)} MB; ${fast.cpu}`,
      `    ${fast.frames}`,
      `    ceiling: ${ceiling.usPerMessage.toFixed(1)} µs CPU a message; ${ceiling.cpu}`,
    ].join("\n"),
  );
}

async function prefetch1Phase(w: World, n: number): Promise<void> {
  const slowN = Number(process.env.BENCH_PREFETCH1_MESSAGES ?? Math.min(n, 5_000));
  const slow = await drain(w, slowN, "service", { PREFETCH: "1" });
  const slowCeiling = await drain(w, slowN, "ceiling", { PREFETCH: "1" });
  console.log(
    [
      `  PREFETCH=1 (the deployed design), ${fmt(slowN)} messages: ${fmt(slow.rate)} events/s (${slow.usPerMessage.toFixed(1)} µs CPU a message); its ceiling ${fmt(slowCeiling.rate)} events/s`,
      `  speed-up over PREFETCH=1: ${(fastRate / slow.rate).toFixed(1)}x${Number.isNaN(fastRate) ? " (no throughput phase in this run)" : ""}`,
    ].join("\n"),
  );
}

async function latencyPhase(w: World): Promise<void> {
  const rate = Number(process.env.BENCH_RATE ?? 2_000);
  // The service's first ~300 ms under load are its warm-up (pool connections
  // opened on demand, each statement planned on each new backend, the JIT):
  // its statements take 10-65 ms then, and they held most of the slowest 1%
  // of a cold 10 s run. Measured apart, before the steady state the target is about.
  const warm = Number(process.env.BENCH_WARMUP_SECONDS ?? 2);
  const lat = await paced(w, warm > 0 ? [rate, rate] : [rate], warm > 0 ? [warm, Number(process.env.BENCH_LATENCY_SECONDS ?? 10)] : [Number(process.env.BENCH_LATENCY_SECONDS ?? 10)]);
  const s = lat.steps.at(-1)!;
  if (warm > 0) {
    const c = lat.steps[0]!;
    console.log(`  warm-up, the first ${warm} s after the service's start at ${fmt(rate)} events/s: p50 ${ms(c.p50)}, p99 ${ms(c.p99)}, max ${ms(c.max)} (not in the figures below)`);
  }
  console.log(
    `  latency at ${fmt(rate)} events/s offered (${fmt(s.offered)} sent/s), publish → committed: p50 ${ms(s.p50)}, p99 ${ms(s.p99)}, max ${ms(s.max)}; service ${lat.usPerMessage.toFixed(1)} µs CPU a message (${((lat.usPerMessage * s.offered) / 1e4).toFixed(0)}% of a core), peak RSS ${lat.rssMb.toFixed(0)} MB`,
  );
}

/** The growth curve: doubling the offered rate until p99 passes CURVE_P99_LIMIT_MS. */
async function growth(w: World): Promise<void> {
  const start = Number(process.env.BENCH_CURVE_START ?? 500);
  const seconds = Number(process.env.BENCH_CURVE_SECONDS ?? 5);
  const rates = Array.from({ length: 10 }, (_, k) => start * 2 ** k);
  // Stop past the limit, or when the service commits less than half of what is offered (p99 then only measures the queue growing).
  const { steps } = await paced(w, rates, rates.map(() => seconds), (p) => p.p99 <= CURVE_P99_LIMIT_MS && p.achieved >= p.offered / 2);
  console.log(`  growth curve, ${seconds} s a step, publish → committed:\n    offered/s  achieved/s   p50 ms   p99 ms   max ms`);
  for (const p of steps) console.log(`    ${fmt(p.offered).padStart(9)}  ${fmt(p.achieved).padStart(10)}  ${p.p50.toFixed(1).padStart(7)}  ${p.p99.toFixed(1).padStart(7)}  ${p.max.toFixed(1).padStart(7)}`);
}

// Last: everything above is defined by now.
const mode = process.argv[2];
if (mode === "--server") await serveChild();
else if (mode === "--ceiling") await ceilingChild(process.argv[3]!, Number(process.argv[4]), Number(process.argv[5]));
else {
  await main();
  process.exit(0);
}
