import { afterAll, beforeAll, expect, test } from "bun:test";
import { createLogger } from "../src/log.ts";
import { startService } from "../src/service.ts";
import { BrokerPeer, insertServer, testConfig, testWorld, waitFor } from "./support/processor.ts";
import { BROKER_HOST, BROKER_PORT } from "./support/services.ts";
import { TcpProxy } from "./support/tcp-proxy.ts";
import { linesWith, readyz } from "./support/faults.ts";

let world: Awaited<ReturnType<typeof testWorld>>;
let peer: BrokerPeer;

beforeAll(async () => {
  world = await testWorld("downatstart");
  peer = await BrokerPeer.connect(world.vhost.url);
});
afterAll(async () => {
  await peer?.close();
  await world?.remove();
});

/** Starts the service with its dependencies behind proxies that are down; returns once it is up. */
async function startWith(down: "broker" | "database"): Promise<void> {
  const proxy = await TcpProxy.start(down === "broker" ? BROKER_HOST : "127.0.0.1", down === "broker" ? BROKER_PORT : 5432);
  await proxy.cut();
  const logs: Record<string, unknown>[] = [];
  const logger = createLogger({ level: "debug", write: (line) => void logs.push(JSON.parse(line)) });
  const env: Record<string, string> = down === "broker" ? { RABBITMQ_URL: proxy.route(world.vhost.url) } : { DATABASE_URL: proxy.route(world.db.url) };
  const controller = new AbortController();
  const starting = startService({ config: testConfig(world.vhost, world.db, { ...env, LOG_LEVEL: "info" }), logger, signal: controller.signal });
  try {
    const waiting = down === "broker" ? "broker unreachable at start; retrying" : "database unreachable at start; waiting for it";
    await waitFor(() => linesWith(logs, waiting).length > 0, 10_000, "waiting logged");
    await Bun.sleep(3000);
    // Several seconds of retries with backoff: one line, not one per attempt.
    expect(linesWith(logs, waiting)).toHaveLength(1);
    expect(logs.filter((l) => (l.level === "warn" || l.level === "error") && !String(l.component ?? "").startsWith("log_"))).toHaveLength(1);
    await proxy.restore();
    const service = await starting;
    const url = `http://127.0.0.1:${service.httpPort}/readyz`;
    await waitFor(async () => (await readyz(url)).status === 200, 10_000, "ready");
    const serverId = await insertServer(world.sql, `after-${down}-came-up`);
    await peer.publish(`status.host.${serverId}`, { server_id: serverId, status: "online" });
    await waitFor(async () => (await world.sql`SELECT status FROM servers WHERE server_id = ${serverId}`)[0]!.status === "online", 10_000, "applied");
    controller.abort();
    await service.stopped;
  } finally {
    controller.abort();
    await proxy.restore();
    await starting.then((s) => s.stopped).catch(() => {});
    await proxy.close();
  }
}

test("a database that is down at start is waited for, with one log line; the service then starts and works", async () => {
  await startWith("database");
}, 60_000);

test("a broker that is down at start is waited for, with one log line; the service then starts and works", async () => {
  await startWith("broker");
}, 60_000);
