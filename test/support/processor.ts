/**
 * Starts the whole service in this test process against a test vhost and
 * database, plus a small AMQP client that plays the host managers (publishes
 * to `manman`) and the downstream systems (listens on the external exchange
 * and the dead-letter queue).
 */
import { afterAll, beforeAll } from "bun:test";
import { AMQPClient, type AMQPChannel, type AMQPMessage } from "@cloudamqp/amqp-client";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { EVENT_BINDINGS, eventQueueArguments, INTERNAL_EXCHANGE } from "../../src/amqp/topology.ts";
import { loadConfig, type Config } from "../../src/config.ts";
import { createLogger, type Logger } from "../../src/log.ts";
import { startService, type Service } from "../../src/service.ts";
import { createDatabase, createVhost, waitFor, type TestDatabase, type TestVhost } from "./services.ts";

export interface RunningProcessor {
  service: Service;
  config: Config;
  /** Every JSON log line the service wrote. */
  logs: Record<string, unknown>[];
  stop(): Promise<void>;
  url(path: string): string;
}

export function testConfig(vhost: TestVhost, db: TestDatabase, env: Record<string, string> = {}): Config {
  const loaded = loadConfig({
    RABBITMQ_URL: vhost.url,
    DATABASE_URL: db.url,
    HEALTH_CHECK_PORT: "0",
    GRPC_PORT: "0",
    LOG_LEVEL: "debug",
    // The log archive writes here unless a test says otherwise (not ./data in the repository).
    LOG_ARCHIVE_DIR: join(tmpdir(), `manman-test-archive-${process.pid}`),
    ...env,
  });
  if (!loaded.ok) throw new Error(loaded.problems.join("\n"));
  return loaded.config;
}

export async function startProcessor(vhost: TestVhost, db: TestDatabase, env: Record<string, string> = {}): Promise<RunningProcessor> {
  const config = testConfig(vhost, db, env);
  const logs: Record<string, unknown>[] = [];
  const logger: Logger = createLogger({
    level: "debug",
    write: (line) => {
      logs.push(JSON.parse(line));
      if (process.env.TEST_VERBOSE) process.stdout.write(line);
    },
  });
  const controller = new AbortController();
  const service = await startService({ config, logger, signal: controller.signal });
  return {
    service,
    config,
    logs,
    url: (path) => `http://127.0.0.1:${service.httpPort}${path}`,
    stop: async () => {
      controller.abort();
      await service.stopped;
    },
  };
}

/** A fresh vhost + database, removed by `remove()`. */
export async function testWorld(prefix: string): Promise<{ vhost: TestVhost; db: TestDatabase; sql: postgres.Sql; remove(): Promise<void> }> {
  const [vhost, db] = await Promise.all([createVhost(prefix), createDatabase(prefix)]);
  const sql = postgres(db.url, { max: 4, onnotice: () => {} });
  return {
    vhost,
    db,
    sql,
    remove: async () => {
      await sql.end({ timeout: 1 });
      await Promise.all([vhost.remove(), db.remove()]);
    },
  };
}

export interface Received {
  routingKey: string;
  body: string;
  headers: Record<string, unknown>;
}

/** The host managers' side and the downstream side of the broker. */
export class BrokerPeer {
  private constructor(
    private readonly client: AMQPClient,
    private readonly ch: AMQPChannel,
  ) {}
  readonly external: Received[] = [];
  readonly deadLettered: Received[] = [];

  static async connect(url: string, options: { externalExchange?: string; queueName?: string } = {}): Promise<BrokerPeer> {
    const client = new AMQPClient(url);
    await client.connect();
    const ch = await client.channel();
    const peer = new BrokerPeer(client, ch);
    const ext = options.externalExchange ?? "external";
    await ch.exchangeDeclare("manman", "topic", { durable: true });
    await ch.exchangeDeclare(ext, "topic", { durable: true });
    const q = await ch.queueDeclare("", { exclusive: true, autoDelete: true });
    await ch.queueBind(q.name, ext, "#");
    await ch.basicConsume(q.name, { noAck: true }, (m) => void peer.external.push(received(m)));
    const dlq = `${options.queueName ?? "processor-events"}-dlq`;
    await ch.queueDeclare(dlq, { durable: true });
    await ch.basicConsume(dlq, { noAck: true }, (m) => void peer.deadLettered.push(received(m)));
    await ch.confirmSelect();
    return peer;
  }

  async publish(routingKey: string, body: unknown): Promise<void> {
    const bytes = typeof body === "string" || body instanceof Uint8Array ? body : JSON.stringify(body);
    await this.ch.basicPublish("manman", routingKey, bytes, { contentType: "application/json", deliveryMode: 2 });
  }

  events(prefix = ""): { routingKey: string; body: unknown }[] {
    return this.external.filter((e) => e.routingKey.startsWith(prefix)).map((e) => ({ routingKey: e.routingKey, body: JSON.parse(e.body) }));
  }

  async close(): Promise<void> {
    await this.client.close().catch(() => {});
  }
}

/** Dead-lettered messages are shown under the routing key they were published with. */
function received(m: AMQPMessage): Received {
  const headers = (m.properties.headers ?? {}) as Record<string, unknown>;
  const original = headers["x-original-routing-key"];
  return { routingKey: typeof original === "string" ? original : m.routingKey, body: m.bodyString() ?? "", headers };
}

/**
 * The event queue, declared and bound as the processor declares it, before
 * any processor runs (as on a live broker), so messages can be queued for a
 * process not started yet.
 */
export async function declareEventQueue(vhostUrl: string): Promise<void> {
  const admin = new AMQPClient(vhostUrl);
  await admin.connect();
  const ch = await admin.channel();
  await ch.queueDeclare("processor-events", { durable: true }, eventQueueArguments({ queueName: "processor-events", queueType: "classic", externalExchange: "external" }));
  for (const key of EVENT_BINDINGS) await ch.queueBind("processor-events", INTERNAL_EXCHANGE, key);
  await admin.close();
}

export async function insertServer(sql: postgres.Sql, name: string, status = "offline"): Promise<number> {
  const [row] = await sql<{ server_id: string }[]>`INSERT INTO servers (name, status) VALUES (${name}, ${status}) RETURNING server_id`;
  return Number(row!.server_id);
}

export async function insertSession(sql: postgres.Sql, sgcId: number, status = "pending"): Promise<number> {
  const [row] = await sql<{ session_id: string }[]>`INSERT INTO sessions (sgc_id, status) VALUES (${sgcId}, ${status}) RETURNING session_id`;
  return Number(row!.session_id);
}

export { waitFor };

export interface ProcessorFixture {
  world: Awaited<ReturnType<typeof testWorld>>;
  processor: RunningProcessor;
  peer: BrokerPeer;
}

/**
 * The usual test file's setup: its own vhost and database, one processor
 * with `env` on top of the test defaults, and a broker peer; all removed
 * after the file. Fields are filled in by beforeAll.
 */
export function useProcessor(prefix: string, env: Record<string, string> = {}): ProcessorFixture {
  const f = {} as ProcessorFixture;
  beforeAll(async () => {
    f.world = await testWorld(prefix);
    f.processor = await startProcessor(f.world.vhost, f.world.db, env);
    f.peer = await BrokerPeer.connect(f.world.vhost.url);
  });
  afterAll(async () => {
    await f.peer?.close();
    await f.processor?.stop();
    await f.world?.remove();
  });
  return f;
}
