/**
 * The log half of the service, started in this test process against a test
 * vhost: broker session → ingest → hub → Connect/gRPC-Web on a Hono app
 * (served by the runtime adapter, as in production) and native gRPC on
 * HTTP/2. Plus a host-manager stand-in that publishes log lines, and clients
 * for the three protocols.
 */
import { AMQPClient, type AMQPChannel } from "@cloudamqp/amqp-client";
import { createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { loadConfig, type Config } from "../../src/config.ts";
import { connectBroker, type BrokerSession } from "../../src/amqp/connection.ts";
import { createHttpApp } from "../../src/http/app.ts";
import { createLogger, silentLogger, type Logger } from "../../src/log.ts";
import { Metrics } from "../../src/metrics.ts";
import { createLogHub, type LogHub } from "../../src/logs/hub.ts";
import { startLogIngest, type LogIngest } from "../../src/log-pipeline/ingest.ts";
import { createLogProcessor } from "../../src/rpc/log-processor.ts";
import { createLogAccess } from "../../src/log-pipeline/log-access.ts";
import { mountRpc } from "../../src/rpc/fetch.ts";
import { startGrpcServer } from "../../src/rpc/grpc-server.ts";
import { currentRuntime } from "../../src/runtime/index.ts";
import { LogProcessor, type LogMessage } from "../../src/gen/manman/v1/log_processor_pb.ts";

export type Protocol = "connect" | "grpc-web" | "grpc";
export const PROTOCOLS: Protocol[] = ["connect", "grpc-web", "grpc"];

export interface LogStack {
  config: Config;
  hub: LogHub;
  ingest: LogIngest;
  metrics: Metrics;
  session: BrokerSession;
  httpPort: number;
  grpcPort: number;
  logs: Record<string, unknown>[];
  client(protocol: Protocol, token?: string): Client<typeof LogProcessor>;
  stop(): Promise<void>;
}

export async function startLogStack(
  amqpUrl: string,
  env: Record<string, string> = {},
  grpcOptions: { keepaliveIntervalMs?: number; keepaliveTimeoutMs?: number; listen?: string } = {},
): Promise<LogStack> {
  // 127.0.0.1 unless a test needs clients from another address (protected mode).
  const { listen = "127.0.0.1", ...keepalive } = grpcOptions;
  const loaded = loadConfig({ RABBITMQ_URL: amqpUrl, HEALTH_CHECK_PORT: "0", GRPC_PORT: "0", ...env });
  if (!loaded.ok) throw new Error(loaded.problems.join("\n"));
  const config = loaded.config;
  const logs: Record<string, unknown>[] = [];
  const logger: Logger = createLogger({ level: "debug", write: (l) => void logs.push(JSON.parse(l)) });
  const metrics = new Metrics();
  const controller = new AbortController();
  const signal = controller.signal;
  const hub = createLogHub({ maxLines: config.logBufferMaxMessages, ttlMs: config.logBufferTtl * 1000, maxBytes: config.logBufferMaxBytes, maxPendingBytes: config.logStreamMaxPendingBytes });
  let ingest: LogIngest | undefined;
  const session = await connectBroker({ url: config.rabbitmqUrl, logger, signal, name: "log-test", onConnect: () => ingest?.reattach() });
  ingest = await startLogIngest({ session, hub, config, logger, metrics, signal });
  const access = createLogAccess(config, logger);
  const limits = { max: config.logStreamsMax, maxPerClient: config.logStreamsPerClientMax };
  const rpc = createLogProcessor({ hub, access, logger, metrics, limits });
  const app = createHttpApp([]);
  mountRpc(app, { routes: rpc.routes, logStreams: rpc.streams, signal, corsOrigins: config.corsOrigins, access });
  // As in the service: HTTP outlives the signal a little, so open streams
  // can send their UNAVAILABLE ending before connections close.
  const httpStop = new AbortController();
  const http = await currentRuntime().serve({ port: 0, hostname: listen, fetch: (req, ctx) => app.fetch(req, ctx), signal: httpStop.signal });
  const grpc = await startGrpcServer({ port: 0, hostname: listen, routes: rpc.routes, logStreams: rpc.streams, logger, signal, access, streamsPerClient: config.logStreamsPerClientMax, ...keepalive });
  const transports = new Map<string, Transport>();
  return {
    config,
    hub,
    ingest,
    metrics,
    session,
    httpPort: http.port,
    grpcPort: grpc.port,
    logs,
    client(protocol, token) {
      const key = `${protocol} ${token ?? ""}`;
      let t = transports.get(key);
      if (!t) {
        const http1 = `http://127.0.0.1:${http.port}`;
        const interceptors: Interceptor[] = token === undefined ? [] : [(next) => (req) => (req.header.set("authorization", `Bearer ${token}`), next(req))];
        t =
          protocol === "connect"
            ? createConnectTransport({ baseUrl: http1, interceptors })
            : protocol === "grpc-web"
              ? createGrpcWebTransport({ baseUrl: http1, interceptors })
              : createGrpcTransport({ baseUrl: `http://127.0.0.1:${grpc.port}`, interceptors });
        transports.set(key, t);
      }
      return createClient(LogProcessor, t);
    },
    async stop() {
      controller.abort();
      await Promise.all([ingest!.stopped, grpc.stopped]);
      await Bun.sleep(200);
      httpStop.abort();
      await Promise.race([http.stopped, Bun.sleep(2000)]);
      await session.stop().catch(() => {});
    },
  };
}

/** Plays the host managers: publishes to `manman` like they do. */
export interface HostManager {
  line(sessionId: number, message: string, extra?: Record<string, unknown>): Promise<void>;
  raw(routingKey: string, body: string | Uint8Array): Promise<void>;
  close(): Promise<void>;
}

export async function hostManager(amqpUrl: string): Promise<HostManager> {
  const client = new AMQPClient(amqpUrl);
  const conn = await client.connect();
  const ch: AMQPChannel = await conn.channel();
  await ch.exchangeDeclare("manman", "topic", { durable: true });
  const raw = async (key: string, body: string | Uint8Array) => void (await ch.basicPublish("manman", key, body));
  return {
    raw,
    line: (sessionId, message, extra = {}) =>
      raw(`logs.session.${sessionId}`, JSON.stringify({ session_id: sessionId, timestamp: Date.now(), source: "stdout", message, ...extra })),
    close: () => conn.close().catch(() => {}),
  };
}

/** Reads `n` messages of one stream (then cancels it), or fails after `timeoutMs`. */
export async function take(
  client: Client<typeof LogProcessor>,
  sessionId: number,
  n: number,
  after = 0,
  timeoutMs = 20_000,
): Promise<LogMessage[]> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
  const out: LogMessage[] = [];
  try {
    if (n === 0) return out;
    for await (const m of client.streamSessionLogs({ sessionId: BigInt(sessionId), afterSequenceNumber: BigInt(after) }, { signal: ac.signal })) {
      out.push(m);
      if (out.length >= n) break;
    }
    return out;
  } finally {
    clearTimeout(timer);
    ac.abort();
  }
}

/** An open stream collecting into an array until stopped. */
export function watch(client: Client<typeof LogProcessor>, sessionId: number, after = 0) {
  const ac = new AbortController();
  const got: LogMessage[] = [];
  const done = (async () => {
    try {
      for await (const m of client.streamSessionLogs({ sessionId: BigInt(sessionId), afterSequenceNumber: BigInt(after) }, { signal: ac.signal })) got.push(m);
      return undefined;
    } catch (err) {
      return err;
    }
  })();
  return { got, done, stop: () => ac.abort() };
}

export const seqs = (ms: LogMessage[]) => ms.map((m) => Number(m.sequenceNumber));
export const texts = (ms: LogMessage[]) => ms.map((m) => m.message);
export const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
export { silentLogger };
