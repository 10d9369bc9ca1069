/**
 * For bench/archive.ts: the lines it publishes, its queues, the child
 * processes it runs (the service, the ceiling consumer) and what it reads
 * of them from /proc (CPU, RSS). Not a test, not shipped.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { AMQPClient, type AMQPChannel } from "@cloudamqp/amqp-client";

export const wall = () => performance.timeOrigin + performance.now();
export const fmt = (n: number) => Math.round(n).toLocaleString("en");
export const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN;

// ---- What is published ---------------------------------------------------

// Lines spread over four minutes that ended ten minutes ago: past the 15 s
// grace, so the archive may write each minute as soon as it holds it, and
// the figure is the writer's, not the grace's.
const SPAN_MS = 4 * 60_000;
const ENDED_AGO_MS = 10 * 60_000;
const PLAYERS = ["Steve", "Alex", "xX_Sn1per_Xx", "mossy_cobble", "Notch2", "redstone_rita", "BuilderBob", "creeper_hugger"];
const MESSAGES: ((i: number, p: string) => string)[] = [
  (i, p) => `${p} moved too quickly! ${(i % 97) / 10},${(i % 13) - 6},${(i % 31) / 4} from x=${i % 2000} y=64 z=${-(i % 1500)}`,
  (i, p) => `${p} joined the game (UUID ${(i * 2654435761) % 4294967296}-${i % 9973}) from /10.0.${i % 256}.${(i * 7) % 256}:${40000 + (i % 20000)}`,
  (i) => `Can't keep up! Is the server overloaded? Running ${2000 + (i % 3000)}ms or ${40 + (i % 60)} ticks behind`,
  (i, p) => `<${p}> anyone got ${i % 64} iron to spare? meet at spawn, coords ${i % 500} 70 ${(i * 3) % 500}`,
  (i) => `Saving chunks for level 'ServerLevel[world]'/minecraft:overworld (${i % 400} chunks, ${i % 50} entities)`,
  (i, p) => `${p} was slain by Zombie using [Iron Sword] at x=${i % 900}, y=${50 + (i % 30)}, z=${(i * 11) % 900}`,
  (i) => `Preparing spawn area: ${i % 100}% (dimension minecraft:the_nether, ${i % 441} of 441 chunks loaded)`,
  (i, p) => `${p} has made the advancement [${["Stone Age", "Getting an Upgrade", "Acquire Hardware", "Hot Stuff"][i % 4]}] in ${i % 3600} seconds`,
];

/** A game-server-like message of 80–120 bytes, varied and deterministic. */
export function message(i: number): string {
  const two = (n: number) => String(n).padStart(2, "0");
  let text = `[${two((i >> 12) % 24)}:${two((i >> 6) % 60)}:${two(i % 60)}] [Server thread/${i % 11 === 0 ? "WARN" : "INFO"}]: `;
  text += MESSAGES[(i * 7) % MESSAGES.length]!(i, PLAYERS[i % PLAYERS.length]!);
  while (text.length < 80) text += ` #${i % 1000}`;
  return text.slice(0, 80 + ((i * 7919) % 41));
}

export interface Plan {
  sessionIds: number[];
  /** Time of each session's first line; line k of a session is at base + k × stepMs. */
  base: number;
  stepMs: number;
  bodies: string[];
}

/** n lines: line j is session j % S's (j / S)-th, so sessions interleave and each is in time order with distinct times. */
export function plan(n: number, sessionIds: number[], endedAgoMs = ENDED_AGO_MS): Plan {
  const s = sessionIds.length;
  const base = Math.floor((Date.now() - endedAgoMs - SPAN_MS) / 60_000) * 60_000;
  const stepMs = Math.max(1, Math.floor(SPAN_MS / Math.ceil(n / s)));
  const bodies = Array.from({ length: n }, (_, j) =>
    JSON.stringify({ session_id: sessionIds[j % s], timestamp: base + Math.floor(j / s) * stepMs, source: j % 5 === 0 ? "stderr" : "stdout", message: message(j) }),
  );
  return { sessionIds, base, stepMs, bodies };
}

export interface PublishOptions {
  /** sentAt[j]: when line j was handed to the socket. */
  sentAt?: Float64Array;
  /** Called when the last line was handed over, with the time. */
  sent?: (at: number) => void;
  /** The connection stays open until this settles (its channel's work is counted by bench/archive-broker.ts only while it lives). */
  keepOpen?: Promise<unknown>;
}

/**
 * Publishes every body (transient, on one channel, each awaited: as fast as
 * the broker takes them, its flow control included). Each await is the
 * socket write, not the broker's: a broker that throttles the connection
 * (flow control) stops reading it, and up to the loopback's TCP buffers
 * (~10 MB here, ~40,000 lines) wait in between, so per-line latencies
 * include that wait. Resolves with the first line's time once the
 * connection closed.
 */
export async function publishAll(url: string, keyOf: (j: number) => string, bodies: string[], options: PublishOptions = {}): Promise<number> {
  const { sentAt } = options;
  const client = await new AMQPClient(url).connect();
  const ch = await client.channel();
  const t0 = wall();
  for (let j = 0; j < bodies.length; j++) {
    if (sentAt) sentAt[j] = wall();
    await ch.basicPublish("manman", keyOf(j), bodies[j]!);
  }
  options.sent?.(wall());
  await options.keepOpen;
  await client.close();
  return t0;
}

// ---- The broker ------------------------------------------------------------

export const CEILING_QUEUE = "bench-archive-ceiling";
// After a backlog is in its queue (its message count says so), before a
// consumer starts: measured here, a do-nothing drain started 1 s after the
// count was reached ran at ~60,000 lines/s, one started 2, 3 or 5 s after at
// 110,000-125,000 (the broker still busy with what it was sent); 3 s, so
// both drains start from a quiet broker.
const SETTLE_MS = 3_000;

/** Resolves once `queue` holds `n` messages, and SETTLE_MS more. */
export async function queued(url: string, queue: string, n: number): Promise<void> {
  const client = await new AMQPClient(url).connect();
  const ch = await client.channel();
  while ((await ch.queueDeclare(queue, { passive: true })).messageCount < n) await Bun.sleep(50);
  await client.close();
  await Bun.sleep(SETTLE_MS);
}

/**
 * The ceiling's durable queue, as the archive's: durable, classic, no
 * arguments, bound with a `#` as the archive's queue is (a `#` costs the
 * broker's topic routing more than a `*`: measured with BENCH_BROKER_WORK,
 * the publisher's channel does ~20% more work a line with the archive's
 * bindings than with two `*` bindings).
 */
export async function declareCeilingQueue(ch: AMQPChannel): Promise<void> {
  await ch.exchangeDeclare("manman", "topic", { durable: true });
  await ch.queueDeclare(CEILING_QUEUE, { durable: true });
  await ch.queueBind(CEILING_QUEUE, "manman", "ceiling.session.#");
}

/**
 * Child of bench/archive.ts: the ceiling's consumers (see its module
 * comment), the durable queue with the archive's prefetch; prints the time
 * each round of n lines has all been received.
 */
export async function ceilingConsumer(url: string, n: number, prefetch: number): Promise<void> {
  const client = await new AMQPClient(url).connect();
  const ch = await client.channel();
  await declareCeilingQueue(ch);
  // As amqp/log-queue.ts declares the live queue (LOG_QUEUE_MAX_LENGTH, LOG_BUFFER_TTL defaults).
  const live = await ch.queueDeclare("", { exclusive: true, autoDelete: true }, { "x-max-length": 100_000, "x-overflow": "drop-head", "x-message-ttl": 180_000 });
  await ch.queueBind(live.name, "manman", "ceiling.session.#"); // as log-queue.ts binds logs.session.#
  await ch.basicConsume(live.name, { noAck: true }, () => {});
  const archive = await client.channel();
  await archive.basicQos(prefetch);
  const batch = Math.ceil(prefetch / 10); // as the archive's acker
  let got = 0;
  const consuming = wall();
  await archive.basicConsume(CEILING_QUEUE, { noAck: false }, (msg) => {
    if (++got % batch === 0 || got % n === 0) void archive.basicAck(msg.deliveryTag, true);
    if (got % n === 0) process.stdout.write(JSON.stringify({ done: wall() }) + "\n");
  });
  process.stdout.write(JSON.stringify({ ready: consuming }) + "\n");
}

// ---- Child processes -------------------------------------------------------

export interface Child {
  proc: ChildProcess;
  lines: AsyncIterator<string>;
}

/** `bun [flags] <script> args…`; its stdout read as lines of JSON, its stderr passed through. */
export function child(script: string, args: string[], env: Record<string, string | undefined>, flags: string[] = []): Child {
  const proc = spawn(process.execPath, [...flags, script, ...args], { env, stdio: ["ignore", "pipe", "inherit"] });
  async function* lines() {
    let buf = "";
    for await (const chunk of proc.stdout!) {
      buf += chunk.toString();
      for (let i = buf.indexOf("\n"); i >= 0; i = buf.indexOf("\n")) {
        yield buf.slice(0, i);
        buf = buf.slice(i + 1);
      }
    }
  }
  return { proc, lines: lines() };
}

/** The child's next line of JSON. */
export async function next(c: Child, timeoutMs: number): Promise<Record<string, number>> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error("the child did not answer in time")), timeoutMs)));
  try {
    const r = await Promise.race([c.lines.next(), late]);
    if (r.done) throw new Error("the child exited");
    return JSON.parse(r.value);
  } finally {
    clearTimeout(timer);
  }
}

/** SIGTERM, then SIGKILL after graceMs (a CPU profile is written on a graceful exit). */
export async function stop(c: Child, graceMs: number): Promise<void> {
  if (c.proc.exitCode !== null || c.proc.signalCode !== null) return;
  const exited = new Promise((r) => c.proc.once("exit", r));
  c.proc.kill("SIGTERM");
  await Promise.race([exited, Bun.sleep(graceMs)]);
  c.proc.kill("SIGKILL");
}

// ---- /proc -------------------------------------------------------------------

const procStat = (pid: number | string) => readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
/** utime + stime of a process, ms (100 ticks a second on Linux). */
export function cpuMs(pid: number | string): number {
  const f = procStat(pid);
  return (Number(f[11]) + Number(f[12])) * 10;
}
/** A VmRSS / VmHWM line of /proc/<pid>/status, in MB. */
export const memoryMb = (pid: number, field: "VmRSS" | "VmHWM") =>
  Number(new RegExp(`${field}:\\s+(\\d+)`).exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) / 1024;

/**
 * CPU ms by command name (beam.smp, postgres, node, bun), over every process
 * alive now. beam.smp counts only the broker itself (`-s rabbit boot`) and
 * node only s3rver: on a shared machine others' rabbitmqctl runs are
 * beam.smp too (each a second of CPU), and their tsc runs node. The broker
 * itself is shared: its CPU includes other vhosts' traffic (archive-broker.ts
 * counts this vhost's work only).
 */
function cpuByName(): Map<string, number> {
  const out = new Map<string, number>();
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      const name = readFileSync(`/proc/${pid}/comm`, "utf8").trim();
      if (name === "beam.smp" && !readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("rabbit\0boot")) continue;
      if (name === "node" && !readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("s3rver")) continue;
      out.set(name, (out.get(name) ?? 0) + cpuMs(pid));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** CPU ms of the broker (beam.smp running RabbitMQ itself). */
export const brokerCpuMs = () => cpuByName().get("beam.smp") ?? 0;

/** [busy, total] jiffies of the whole machine. */
function boxCpu(): [number, number] {
  const f = readFileSync("/proc/stat", "utf8").split("\n")[0]!.split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return [total - f[3]! - f[4]!, total];
}

/** CPU use from now until `done()`: the service's, the broker's, the database's, s3rver's, the whole box's. */
export function cpuMeter(servicePid: number): { done(seconds: number, lines: number): string } {
  const [svc0, me0, box0, names0] = [cpuMs(servicePid), cpuMs(process.pid), boxCpu(), cpuByName()];
  return {
    done(seconds, lines) {
      const [svc1, me1, box1, names1] = [cpuMs(servicePid), cpuMs(process.pid), boxCpu(), cpuByName()];
      const perLine = (ms: number) => `${((ms * 1000) / lines).toFixed(1)} µs a line`;
      const share = (ms: number) => `${(ms / 10 / seconds).toFixed(0)}%`;
      const of = (name: string, label: string) => `${label} ${share((names1.get(name) ?? 0) - (names0.get(name) ?? 0))}`;
      const busy = ((box1[0] - box0[0]) / (box1[1] - box0[1])) * 100;
      return (
        `CPU (100% = one core): service ${share(svc1 - svc0)} (${perLine(svc1 - svc0)}), ${of("beam.smp", "RabbitMQ")} (${perLine((names1.get("beam.smp") ?? 0) - (names0.get("beam.smp") ?? 0))}), ` +
        `this bench (publisher, poller) ${share(me1 - me0)}, ${of("postgres", "PostgreSQL")}, ${of("node", "s3rver (node)")}; ` +
        `whole box ${busy.toFixed(0)}% busy of ${navigator.hardwareConcurrency} cores`
      );
    },
  };
}
