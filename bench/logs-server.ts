/**
 * The service side of `bench:logs` (bench/logs.ts): the log half of the
 * service, wired as src/service.ts wires it, in a child process so that its
 * RSS and CPU are its own, plus the parent's handle on it.
 *
 *   bun bench/logs-server.ts <amqp url>   (settings from the environment)
 *
 * It prints {http, grpc} once listening, and answers GET /bench (ingested
 * lines and the hub's stats) and POST /bench/gc (a full GC, so RSS is read
 * at a settled point).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";

export interface Server {
  readonly proc: ChildProcess;
  readonly ports: { http: number; grpc: number };
  /** `ended`: streams the service ended, by reason; `disconnects`, `queueFull`: its broker connection lost, its log queue found full (all since the start). */
  stats(): Promise<{ ingested: number; subscribers: number; lines: number; bytes: number; pinnedBytes: number; ended: Record<string, number>; disconnects: number; queueFull: number }>;
  gc(): Promise<void>;
  /** Subscribes in the service to sessions first..first+count-1, timing publish → hub. */
  watch(first: number, count: number): Promise<void>;
  /** p50/p99 (ms) of publish → hub since the last call. */
  hubLatency(): Promise<{ p50: number; p99: number; n: number; stalls: number; busy: number; gc: number; worstStall: number }>;
  /** Resident memory, MB. */
  rss(): number;
  /** CPU time (user + system) used so far, ms. */
  cpuMs(): number;
  cpuMsOf(pid: number): number;
  stop(): Promise<void>;
}

/** utime + stime of a process, in ms (clock ticks are 10 ms on Linux). */
function cpuMsOf(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return 0; // gone
  }
}

export async function startServer(amqpUrl: string, settings: Record<string, string>): Promise<Server> {
  // BENCH_PROFILE=<dir>: the service writes a CPU profile (markdown) there on exit.
  const profile = process.env.BENCH_PROFILE ? ["--cpu-prof-md", `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : [];
  const proc = spawn(process.execPath, [...profile, import.meta.path, amqpUrl], { env: { ...process.env, ...settings }, stdio: ["ignore", "pipe", "inherit"] });
  const ports = await new Promise<{ http: number; grpc: number }>((resolve, reject) => {
    proc.stdout!.once("data", (d: Buffer) => resolve(JSON.parse(d.toString())));
    proc.once("exit", (code) => reject(new Error(`server exited with ${code}`)));
  });
  const base = `http://127.0.0.1:${ports.http}/bench`;
  return {
    proc,
    ports,
    stats: async () => (await (await fetch(base)).json()) as Awaited<ReturnType<Server["stats"]>>,
    gc: async () => void (await fetch(`${base}/gc`, { method: "POST" })).body?.cancel(),
    watch: async (first, count) => void (await fetch(`${base}/watch`, { method: "POST", body: JSON.stringify({ first, count }) })).body?.cancel(),
    hubLatency: async () => (await (await fetch(`${base}/hub-latency`)).json()) as Awaited<ReturnType<Server["hubLatency"]>>,
    rss: () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${proc.pid}/status`, "utf8"))?.[1] ?? 0) / 1024,
    cpuMs: () => cpuMsOf(proc.pid!),
    cpuMsOf,
    async stop() {
      const exited = new Promise((r) => proc.once("exit", r));
      proc.kill("SIGCONT");
      proc.kill("SIGTERM");
      const killer = setTimeout(() => proc.kill("SIGKILL"), profile.length > 0 ? 5000 : 1000);
      await exited;
      clearTimeout(killer);
    },
  };
}

if (import.meta.main) await serve(process.argv[2]!);

async function serve(amqpUrl: string): Promise<void> {
  const { loadConfig } = await import("../src/config.ts");
  const { connectBroker } = await import("../src/amqp/connection.ts");
  const { createHttpApp } = await import("../src/http/app.ts");
  const { createLogger, silentLogger } = await import("../src/log.ts");
  const { Metrics } = await import("../src/metrics.ts");
  const { startLogService } = await import("../src/log-pipeline/log-service.ts");
  const { createLogAccess } = await import("../src/log-pipeline/log-access.ts");
  const { currentRuntime } = await import("../src/runtime/index.ts");
  // BENCH_SERVER_LOG=info|warn|…: the service's own log lines on stderr (why streams ended, connections closed).
  const level = process.env.BENCH_SERVER_LOG as "debug" | "info" | "warn" | "error" | undefined;
  const logger = level ? createLogger({ level, write: (l) => process.stderr.write(l) }) : silentLogger;
  const metrics = new Metrics();
  const loaded = loadConfig({ ...process.env, RABBITMQ_URL: amqpUrl, HEALTH_CHECK_PORT: "0", GRPC_PORT: "0", LOG_ACCESS_TOKEN: "" });
  if (!loaded.ok) throw new Error(loaded.problems.join("\n"));
  const config = loaded.config;
  const controller = new AbortController();
  let reattach = async () => {};
  const session = await connectBroker({ url: amqpUrl, logger, metrics, signal: controller.signal, onConnect: () => reattach() });
  const app = createHttpApp([]);
  const access = createLogAccess(config, logger);
  const logs = await startLogService({ config, session, app, logger, metrics, signal: controller.signal, access });
  reattach = logs.ingest.reattach;
  // Streams the service ended, by the reason it counted (manman_log_streams_ended_total), since the start.
  const ended = () => {
    const out: Record<string, number> = {};
    for (const m of metrics.render().matchAll(/^manman_log_streams_ended_total\{reason="([^"]+)"\} (\d+)$/gm)) out[m[1]!] = Number(m[2]);
    return out;
  };
  app.get("/bench", (c) =>
    c.json({
      ingested: logs.ingest.ingested(),
      ...logs.hub.stats(),
      ended: ended(),
      disconnects: metrics.total("manman_broker_disconnects_total"),
      queueFull: metrics.total("manman_log_queue_full_total"),
    }),
  );
  // Publish → the line is in the hub (the broker leg plus this process.s own lag),
  // read by one in-process subscriber per watched session (no network).
  let hubLatencies: number[] = [];
  app.post("/bench/watch", async (c) => {
    const { first, count } = (await c.req.json()) as { first: number; count: number };
    for (let id = first; id < first + count; id++) {
      void (async () => {
        for await (const line of logs.hub.subscribe(id, 0)) hubLatencies.push(performance.timeOrigin + performance.now() - Number(line.message));
      })();
    }
    return c.text("ok");
  });
  // Event-loop stalls: a 10 ms timer that fires late by more than 20 ms;
  // "busy" when this process used the CPU for most of the stall (its own
  // work or GC), otherwise it was waiting for a core (a shared machine).
  // "gc" when the heap shrank by over 4 MB across it (a collection ran).
  const { heapSize } = await import("bun:jsc");
  let stalls: number[] = [];
  let busy = 0;
  let gc = 0;
  let tick = performance.now();
  let cpu = process.cpuUsage();
  let heap = heapSize();
  setInterval(() => {
    const t = performance.now();
    const used = process.cpuUsage(cpu);
    const h = heapSize();
    const late = t - tick - 10;
    if (late > 20) {
      stalls.push(late);
      if ((used.user + used.system) / 1000 > (t - tick) / 2) busy++;
      if (heap - h > 4 * 1024 * 1024) gc++;
    }
    [tick, cpu, heap] = [t, process.cpuUsage(), h];
  }, 10);
  app.get("/bench/hub-latency", (c) => {
    const l = hubLatencies.sort((a, b) => a - b);
    const pct = (p: number) => l[Math.min(l.length - 1, Math.ceil((p / 100) * l.length) - 1)] ?? NaN;
    const out = { p50: pct(50), p99: pct(99), n: l.length, stalls: stalls.length, busy, gc, worstStall: Math.max(0, ...stalls) };
    hubLatencies = [];
    stalls = [];
    busy = 0;
    gc = 0;
    return c.json(out);
  });
  app.post("/bench/gc", (c) => {
    Bun.gc(true);
    return c.text("ok");
  });
  const http = await currentRuntime().serve({ port: 0, hostname: "127.0.0.1", fetch: (req, ctx) => app.fetch(req, ctx), signal: controller.signal });
  // A clean exit, so a CPU profile (BENCH_PROFILE) is written.
  process.on("SIGTERM", () => process.exit(0));
  process.stdout.write(JSON.stringify({ http: http.port, grpc: logs.grpcPort }) + "\n");
}
