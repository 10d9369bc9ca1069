/**
 * `bun run bench:logs` — live session logs under load, against the real
 * broker on a throwaway vhost. Not a test: it prints figures.
 *
 * The server (ingest → hub → LogProcessor on HTTP and gRPC) runs in a child
 * process so its RSS is its own; this process publishes lines and runs the
 * clients. Figures:
 *   1. lines/s ingested: the child is paused (SIGSTOP) while N lines pile up
 *      in its queue, then resumed; the time to take them all in is timed.
 *   2. broker→client latency p50/p99 with 1, 100 and 1,000 concurrent gRPC
 *      streams (over 10 sessions), lines published at a steady rate; each
 *      line carries its publish time, the client subtracts it on arrival.
 *   3. the child's peak RSS during each phase.
 * Connect over HTTP/1.1 (the browser path) is measured with 100 streams.
 * Environment: BENCH_LINES (ingest phase, default 200000), BENCH_RATE (lines/s
 * during latency phases, default 200), BENCH_SECONDS (per phase, default 5),
 * BENCH_PHASES (e.g. `grpc:1000,connect:100`), BENCH_PROFILE (a directory for
 * the server's CPU profile).
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { AMQPClient } from "@cloudamqp/amqp-client";
import { createClient } from "@connectrpc/connect";
import { connect as h2connect, type ClientHttp2Session } from "node:http2";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { createConnectTransport } from "@connectrpc/connect-web";
import { LogMessageSchema, LogProcessor, StreamSessionLogsRequestSchema } from "../src/gen/manman/v1/log_processor_pb.ts";

const now = () => performance.timeOrigin + performance.now();
type Protocol = "grpc" | "connect";
// 400 sessions × 500 lines of ~100 B is more than LOG_BUFFER_MAX_BYTES holds,
// so the latency phases run with the log buffers full: the worst case for RSS.
const INGEST_SESSIONS = 400;

if (process.argv[2] === "--server") await serve(process.argv[3]!);
else await main();

/** The child: the log half of the service, as src/service.ts wires it. */
async function serve(amqpUrl: string): Promise<void> {
  const { loadConfig } = await import("../src/config.ts");
  const { connectBroker } = await import("../src/amqp/connection.ts");
  const { createHttpApp } = await import("../src/http/app.ts");
  const { silentLogger } = await import("../src/log.ts");
  const { Metrics } = await import("../src/metrics.ts");
  const { startLogService } = await import("../src/log-pipeline/log-service.ts");
  const { currentRuntime } = await import("../src/runtime/index.ts");
  const loaded = loadConfig({ ...process.env, RABBITMQ_URL: amqpUrl, HEALTH_CHECK_PORT: "0", GRPC_PORT: "0", LOG_ACCESS_TOKEN: "" });
  if (!loaded.ok) throw new Error(loaded.problems.join("\n"));
  const config = loaded.config;
  const signal = new AbortController().signal;
  let reattach = async () => {};
  const session = await connectBroker({ url: amqpUrl, logger: silentLogger, signal, onConnect: () => reattach() });
  const app = createHttpApp([]);
  const { createLogAccess } = await import("../src/log-pipeline/log-access.ts");
  const access = createLogAccess(config, silentLogger);
  const logs = await startLogService({ config, session, app, logger: silentLogger, metrics: new Metrics(), signal, access });
  reattach = logs.ingest.reattach;
  app.get("/bench", (c) => c.json({ ingested: logs.ingest.ingested(), ...logs.hub.stats() }));
  const http = await currentRuntime().serve({ port: 0, hostname: "127.0.0.1", fetch: (req, ctx) => app.fetch(req, ctx), signal });
  process.on("SIGTERM", () => process.exit(0));
  process.stdout.write(JSON.stringify({ http: http.port, grpc: logs.grpcPort }) + "\n");
}

async function main(): Promise<void> {
  const lines = Number(process.env.BENCH_LINES ?? 200_000);
  const rate = Number(process.env.BENCH_RATE ?? 200);
  const seconds = Number(process.env.BENCH_SECONDS ?? 5);
  const { createVhost } = await import("../test/support/services.ts");
  const vhost = await createVhost("mmbench");
  // BENCH_PROFILE=<dir>: the server writes a CPU profile (markdown) there on exit.
  const profile = process.env.BENCH_PROFILE ? ["--cpu-prof-md", `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : [];
  const child = spawn(process.execPath, [...profile, import.meta.path, "--server", vhost.url], {
    // Every bench client comes from 127.0.0.1, as clients behind one proxy
    // do: the per-address stream cap is raised to the total, as docs/logs.md advises there.
    env: { ...process.env, LOG_QUEUE_MAX_LENGTH: String(lines + 10_000), LOG_STREAMS_PER_CLIENT_MAX: process.env.LOG_STREAMS_PER_CLIENT_MAX ?? "2000" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  try {
    const ports = await new Promise<{ http: number; grpc: number }>((resolve, reject) => {
      child.stdout!.once("data", (d: Buffer) => resolve(JSON.parse(d.toString())));
      child.once("exit", (code) => reject(new Error(`server exited with ${code}`)));
    });
    const stats = async () => (await (await fetch(`http://127.0.0.1:${ports.http}/bench`)).json()) as { ingested: number; subscribers: number; lines: number; bytes: number };
    const cpu = () => {
      // utime + stime of the child, in clock ticks (100 per second on Linux).
      const f = readFileSync(`/proc/${child.pid}/stat`, "utf8").split(") ")[1]!.split(" ");
      return (Number(f[11]) + Number(f[12])) * 10;
    };
    const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"))?.[1] ?? 0) / 1024;
    const amqp = await new AMQPClient(vhost.url).connect();
    const ch = await amqp.channel();
    const publish = (session: number, message: string) =>
      ch.basicPublish("manman", `logs.session.${session}`, JSON.stringify({ session_id: session, timestamp: Date.now(), source: "stdout", message }));

    console.log(`manman-processor log benchmark (bun ${Bun.version}, ${navigator.hardwareConcurrency} cores)`);
    console.log(`idle server RSS: ${rss().toFixed(0)} MB`);

    // 1. Ingest: pile lines up while the server is paused, then time the catch-up.
    child.kill("SIGSTOP");
    const body = "x".repeat(80);
    const t0 = performance.now();
    for (let i = 0; i < lines; i++) {
      await publish(1 + (i % INGEST_SESSIONS), `${i} ${body}`);
    }
    const publishS = (performance.now() - t0) / 1000;
    await Bun.sleep(1000); // let the broker finish routing
    child.kill("SIGCONT");
    const t1 = performance.now();
    let peak = 0;
    while ((await stats()).ingested < lines) {
      peak = Math.max(peak, rss());
      await Bun.sleep(20);
    }
    const ingestS = (performance.now() - t1) / 1000;
    console.log(
      `buffers now: ${(await stats()).lines.toLocaleString("en")} lines, ${((await stats()).bytes / 1048576).toFixed(1)} MB estimated\n` +
      `ingest: ${lines} lines (${INGEST_SESSIONS} sessions, ~100 B) in ${ingestS.toFixed(2)} s = ${Math.round(lines / ingestS).toLocaleString("en")} lines/s` +
        ` (published at ${Math.round(lines / publishS).toLocaleString("en")} lines/s); peak RSS ${Math.max(peak, rss()).toFixed(0)} MB`,
    );

    // The ceiling: how fast this broker hands the same lines to a consumer
    // that does nothing with them (same queue arguments, no acks).
    const baseline = await brokerCeiling(vhost.url, lines, (i) => JSON.stringify({ session_id: 1 + (i % INGEST_SESSIONS), timestamp: Date.now(), source: "stdout", message: `${i} ${body}` }));
    console.log(`broker ceiling: a consumer that does nothing drains the same ${lines} lines at ${Math.round(baseline).toLocaleString("en")} lines/s`);

    // 2. Latency with 1, 100 and 1,000 streams.
    // gRPC as existing clients use it; Connect over HTTP/1.1 as browsers do
    // (one connection per stream, so 100 is where a browser fleet sits).
    const phases: [Protocol, number][] = process.env.BENCH_PHASES
      ? process.env.BENCH_PHASES.split(",").map((p) => p.split(":") as [Protocol, string]).map(([p, n]) => [p, Number(n)])
      : [["grpc", 1], ["grpc", 100], ["grpc", 1000], ["connect", 100]];
    for (const [protocol, streams] of phases) {
      const [serverCpu0, clientCpu0, wall0] = [cpu(), process.cpuUsage(), performance.now()];
      const result = await latencyPhase(ports, protocol, streams, rate, seconds, publish, stats, rss);
      const wall = performance.now() - wall0;
      const clientCpu = process.cpuUsage(clientCpu0);
      const load = `server CPU ${Math.round(((cpu() - serverCpu0) / wall) * 100)}%, clients+publisher CPU ${Math.round(((clientCpu.user + clientCpu.system) / 1000 / wall) * 100)}%`;
      console.log(
        `${protocol.padEnd(7)} ${String(streams).padStart(4)} streams: p50 ${result.p50.toFixed(1)} ms, p99 ${result.p99.toFixed(1)} ms, ` +
          `${result.delivered.toLocaleString("en")} messages delivered (${Math.round(result.delivered / seconds).toLocaleString("en")}/s), ` +
          `${result.missing} missing, server peak RSS ${result.peakRss.toFixed(0)} MB; ${load}`,
      );
    }
    await amqp.close();
  } finally {
    child.kill("SIGTERM");
    await new Promise((r) => setTimeout(r, profile.length > 0 ? 3000 : 100));
    child.kill("SIGKILL");
    await vhost.remove();
  }
}

/** One StreamSessionLogs call over plain gRPC; resolves when it ends. */
function rawGrpcStream(session: ClientHttp2Session, sessionId: number, onMessage: (m: string) => void, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const req = session.request({ ":method": "POST", ":path": "/manman.v1.LogProcessor/StreamSessionLogs", "content-type": "application/grpc", te: "trailers" });
    const body = toBinary(StreamSessionLogsRequestSchema, create(StreamSessionLogsRequestSchema, { sessionId: BigInt(sessionId) }));
    const frame = new Uint8Array(5 + body.length);
    new DataView(frame.buffer).setUint32(1, body.length);
    frame.set(body, 5);
    req.end(frame);
    let pending = new Uint8Array(0);
    req.on("data", (chunk: Buffer) => {
      const all = new Uint8Array(pending.length + chunk.length);
      all.set(pending);
      all.set(chunk, pending.length);
      let at = 0;
      while (all.length - at >= 5) {
        const len = new DataView(all.buffer, at + 1, 4).getUint32(0);
        if (all.length - at - 5 < len) break;
        onMessage(fromBinary(LogMessageSchema, all.subarray(at + 5, at + 5 + len)).message);
        at += 5 + len;
      }
      pending = all.slice(at);
    });
    req.on("close", () => resolve());
    req.on("error", () => resolve());
    signal.addEventListener("abort", () => req.close(), { once: true });
  });
}

async function brokerCeiling(url: string, n: number, body: (i: number) => string): Promise<number> {
  const pub = await new AMQPClient(url).connect();
  const sub = await new AMQPClient(url).connect();
  try {
    const pch = await pub.channel();
    const sch = await sub.channel();
    const q = await sch.queueDeclare("", { exclusive: true }, { "x-max-length": n + 10_000, "x-overflow": "drop-head", "x-message-ttl": 180_000 });
    await sch.queueBind(q.name, "manman", "ceiling.#");
    for (let i = 0; i < n; i++) await pch.basicPublish("manman", `ceiling.${i % 100}`, body(i));
    await Bun.sleep(1000);
    let got = 0;
    let done!: () => void;
    const all = new Promise<void>((r) => (done = r));
    const t0 = performance.now();
    await sch.basicConsume(q.name, { noAck: true }, () => void (++got === n && done()));
    await all;
    return n / ((performance.now() - t0) / 1000);
  } finally {
    await Promise.all([pub.close(), sub.close()]).catch(() => {});
  }
}

async function latencyPhase(
  ports: { http: number; grpc: number },
  protocol: Protocol,
  streams: number,
  rate: number,
  seconds: number,
  publish: (session: number, message: string) => Promise<unknown>,
  stats: () => Promise<{ subscribers: number }>,
  rss: () => number,
): Promise<{ p50: number; p99: number; delivered: number; missing: number; peakRss: number }> {
  const sessions = Math.min(10, streams);
  // Fresh session ids per phase, so no stream starts with a backlog.
  const base = 1_000_000 + Math.floor(Math.random() * 1_000_000) * 10;
  // One HTTP/2 connection per 100 streams, as separate clients would spread.
  const latencies: number[] = [];
  const ac = new AbortController();
  let delivered = 0;
  const onMessage = (message: string) => {
    latencies.push(now() - Number(message));
    delivered++;
  };
  let running: Promise<unknown>[];
  if (protocol === "connect") {
    const client = createClient(LogProcessor, createConnectTransport({ baseUrl: `http://127.0.0.1:${ports.http}`, useBinaryFormat: true }));
    running = Array.from({ length: streams }, async (_, i) => {
      try {
        for await (const m of client.streamSessionLogs({ sessionId: BigInt(base + (i % sessions)) }, { signal: ac.signal })) onMessage(m.message);
      } catch {
        // cancelled at the end of the phase
      }
    });
  } else {
    // A lean gRPC client (HTTP/2 + envelope parsing), one connection per 100
    // streams: connect-node's client costs as much per message as the server,
    // and would measure itself.
    const sessionsH2 = Array.from({ length: Math.ceil(streams / 100) }, () => h2connect(`http://127.0.0.1:${ports.grpc}`));
    running = Array.from({ length: streams }, (_, i) => rawGrpcStream(sessionsH2[Math.floor(i / 100)], base + (i % sessions), onMessage, ac.signal));
    ac.signal.addEventListener("abort", () => sessionsH2.forEach((s) => s.close()));
  }
  while ((await stats()).subscribers < streams) await Bun.sleep(50);
  let peakRss = rss();
  const total = rate * seconds;
  const start = performance.now();
  for (let i = 0; i < total; i++) {
    // Steady pace: line i goes out at start + i/rate.
    const due = start + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await Bun.sleep(wait);
    await publish(base + (i % sessions), String(now()));
    if (i % rate === 0) peakRss = Math.max(peakRss, rss());
  }
  const expected = total * (streams / sessions);
  const deadline = performance.now() + 10_000;
  while (delivered < expected && performance.now() < deadline) await Bun.sleep(50);
  peakRss = Math.max(peakRss, rss());
  ac.abort();
  await Promise.all(running);
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? NaN;
  return { p50: pct(50), p99: pct(99), delivered, missing: expected - delivered, peakRss };
}
