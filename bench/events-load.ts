/**
 * For bench/events.ts: the realistic mix it publishes, how it publishes
 * (a backlog, or paced at a rate), and the two child processes it measures:
 * the whole service (`--server`) and a do-nothing consumer on the same
 * queue with the same prefetch and batched acks (`--ceiling`). Each child
 * prints JSON lines on stdout and reads its own CPU, so the figures are the
 * child's alone. Not a test, not shipped.
 */
import { createWriteStream } from "node:fs";
import { AMQPChannel, AMQPClient } from "@cloudamqp/amqp-client";
import type postgres from "postgres";
import { wall } from "./archive-load.ts";
import { heartbeatBody, heartbeatKey, hostStatusBody, hostStatusKey, sessionStatusBody, sessionStatusKey, type HostSessionStatus } from "../src/tools/fleet/messages.ts";

// Hosts in the mix (BENCH_SERVERS): each host's messages are applied in order, one commit after another, so few hosts sending much bind the rate to that chain.
export const SERVERS = Number(process.env.BENCH_SERVERS ?? 200);
export const QUEUE = "processor-events"; // QUEUE_NAME's default

/**
 * The mix, as routing key + body, for `count` messages: 85% heartbeats, 12%
 * session transitions, 3% host status. Bodies are simulate's (src/tools/fleet/
 * messages.ts): byte for byte what a real host manager publishes.
 */
const STATS = { total: 2, pending: 0, starting: 0, running: 2, stopping: 0, stopped: 0, crashed: 0 };

export function* mix(count: number, serverIds: number[], sessionIds: number[]): Generator<[string, string]> {
  const steps: HostSessionStatus[] = ["starting", "running", "stopping", "stopped"];
  let nextSession = 0;
  let step = 0;
  for (let i = 0; i < count; i++) {
    const r = i % 100;
    if (r < 12 && nextSession < sessionIds.length) {
      // Transitions walk sessions through the machine, four in a row each
      // but interleaved with other traffic.
      const id = sessionIds[nextSession]!;
      const status = steps[step]!;
      yield [sessionStatusKey(id), sessionStatusBody(id, id, status, status === "stopped" ? 0 : undefined)];
      if (++step === 4) (step = 0), nextSession++;
    } else if (r < 15) {
      const id = serverIds[i % serverIds.length]!;
      yield [hostStatusKey(id), hostStatusBody(id, "online")];
    } else {
      const id = serverIds[i % serverIds.length]!;
      yield [heartbeatKey(id), heartbeatBody(id, STATS)];
    }
  }
}

/** Servers once; sessions per phase (fresh ones, so every transition is real work): 12% of messages, four each. */
export async function seedServers(sql: postgres.Sql): Promise<number[]> {
  const rows = await sql<{ id: string }[]>`INSERT INTO servers (name, status, last_seen) SELECT 'bench-' || g, 'online', now() FROM generate_series(1, ${SERVERS}) g RETURNING server_id AS id`;
  return rows.map((r) => Number(r.id));
}
export async function seedSessions(sql: postgres.Sql, messages: number): Promise<number[]> {
  const n = Math.ceil((messages * 0.12) / 4) + 1;
  const rows = await sql<{ id: string }[]>`INSERT INTO sessions (sgc_id) SELECT g FROM generate_series(1, ${n}) g RETURNING session_id AS id`;
  return rows.map((r) => Number(r.id));
}

/** Publishes the mix as fast as the broker takes it (persistent, as hosts send it). */
export async function publishBacklog(url: string, messages: Iterable<[string, string]>): Promise<void> {
  const client = await new AMQPClient(url).connect();
  const ch = await client.channel();
  for (const [key, body] of messages) await ch.basicPublish("manman", key, body, { deliveryMode: 2 });
  await client.close();
}

/**
 * Publishes the mix at `rate` messages/s: each 1 ms tick sends what is due
 * by then. sentAt[i] is when message i left. Returns the rate achieved.
 */
export async function publishPaced(url: string, messages: [string, string][], rate: number, sentAt: Float64Array): Promise<number> {
  const client = await new AMQPClient(url).connect();
  const ch = await client.channel();
  const t0 = wall();
  let i = 0;
  while (i < messages.length) {
    const due = Math.min(messages.length, Math.floor(((wall() - t0) * rate) / 1000) + 1);
    for (; i < due; i++) {
      sentAt[i] = wall();
      await ch.basicPublish("manman", messages[i]![0], messages[i]![1], { deliveryMode: 2 });
    }
    if (i < messages.length) await Bun.sleep(1);
  }
  const achieved = messages.length / ((wall() - t0) / 1000);
  await client.close();
  return achieved;
}

const cpuNowMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const say = (o: Record<string, unknown>) => void process.stdout.write(JSON.stringify(o) + "\n");

/**
 * Child: the whole service with the settings in the environment, its log
 * (at LOG_LEVEL, info by default as deployed) to the file BENCH_LOG_FILE
 * through a stream, as it goes to stdout. BENCH_ROUNDS is a
 * list of message counts: when the messages settled reach the end of each
 * round it prints that round's settle times (epoch ms) and its CPU so far.
 */
export async function serveChild(): Promise<void> {
  const { loadConfig } = await import("../src/config.ts");
  const { createLogger, ...log } = await import("../src/log.ts");
  const batchedWriter = (log as { batchedWriter?: (write: (chunk: string) => void) => (line: string) => void }).batchedWriter;
  const { startService } = await import("../src/service.ts");
  const { Metrics } = await import("../src/metrics.ts");
  // Frames the service sends the broker per message, by kind: acks one at a
  // time cost RabbitMQ far more than one multiple-ack for many.
  const frames = { ackMultiple: 0, ackSingle: 0, publish: 0 };
  const proto = AMQPChannel.prototype as unknown as Record<string, (...a: unknown[]) => unknown>;
  const [ack, publish] = [proto.basicAck!, proto.basicPublish!];
  proto.basicAck = function (this: unknown, ...a: unknown[]) {
    frames[a[1] ? "ackMultiple" : "ackSingle"]++;
    return ack.apply(this, a);
  };
  proto.basicPublish = function (this: unknown, ...a: unknown[]) {
    frames.publish++;
    return publish.apply(this, a);
  };
  const takeTrace = process.env.BENCH_TRACE ? await (await import("./events-trace.ts")).installTrace() : undefined;
  const rounds = (process.env.BENCH_ROUNDS ?? "").split(",").filter(Boolean).map(Number);
  let round = 0;
  let times: number[] = [];
  class TimedMetrics extends Metrics {
    override inc(name: string, help: string, labels?: Record<string, string>, by?: number): void {
      super.inc(name, help, labels, by);
      // Counted once the statement committed, before the ack: "committed".
      if (name !== "manman_event_messages_total") return;
      times.push(wall());
      if (round < rounds.length && times.length === rounds[round]) {
        say({ round: round++, cpu: cpuNowMs(), times, ...frames, ...(takeTrace ? { trace: takeTrace() } : {}) });
        times = [];
      }
    }
  }
  const loaded = loadConfig({ ...process.env, HEALTH_CHECK_PORT: "0", GRPC_PORT: "0" });
  if (!loaded.ok) throw new Error(loaded.problems.join("\n"));
  const controller = new AbortController();
  const file = createWriteStream(process.env.BENCH_LOG_FILE ?? "/dev/null", { flags: "a" });
  // As src/main.ts logs (batched lines; a line a write before they were, which an A/B run against older code keeps).
  const toFile = (chunk: string) => void file.write(chunk);
  const logger = createLogger({ level: loaded.config.logLevel, write: batchedWriter ? batchedWriter(toFile) : toFile });
  const cpu0 = cpuNowMs();
  const service = await startService({ config: loaded.config, logger, signal: controller.signal, metrics: new TimedMetrics() });
  process.on("SIGTERM", () => {
    controller.abort();
    void service.stopped.then(() => process.exit(0));
  });
  say({ ready: wall(), cpu: cpuNowMs(), startCpu: cpuNowMs() - cpu0 });
}

/**
 * Child: the ceiling. A consumer that does nothing with what it gets, on
 * the same queue, with the same prefetch, exclusive, acking `multiple`
 * every tenth of the prefetch as the service's acker does. Prints ready,
 * then done once `n` messages came, with its CPU.
 */
export async function ceilingChild(url: string, prefetch: number, n: number): Promise<void> {
  const client = await new AMQPClient(url).connect();
  const ch = await client.channel();
  await ch.basicQos(prefetch);
  const batch = Math.ceil(prefetch / 10);
  let got = 0;
  say({ ready: wall(), cpu: cpuNowMs() });
  await ch.basicConsume(QUEUE, { noAck: false, exclusive: true }, (msg) => {
    if (++got % batch === 0 || got === n) void ch.basicAck(msg.deliveryTag, true);
    if (got === n) say({ round: 0, done: wall(), cpu: cpuNowMs() });
  });
}
