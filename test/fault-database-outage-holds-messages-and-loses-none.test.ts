import { afterAll, beforeAll, expect, test } from "bun:test";
import { BrokerPeer, startProcessor, testWorld, waitFor, type RunningProcessor } from "./support/processor.ts";
import { TcpProxy } from "./support/tcp-proxy.ts";
import { createSessions, inconsistentSessions, linesWith, publishStep, readyz, waitAllAnnounced, waitAllStopped } from "./support/faults.ts";

let world: Awaited<ReturnType<typeof testWorld>>;
let proxy: TcpProxy;
let processor: RunningProcessor;
let peer: BrokerPeer;

const PREFETCH = 64;

beforeAll(async () => {
  world = await testWorld("dbout");
  proxy = await TcpProxy.start("127.0.0.1", 5432);
  processor = await startProcessor(world.vhost, world.db, {
    DATABASE_URL: proxy.route(world.db.url),
    LOG_LEVEL: "info",
    PREFETCH: String(PREFETCH),
  });
  peer = await BrokerPeer.connect(world.vhost.url);
});
afterAll(async () => {
  await proxy?.restore();
  await peer?.close();
  await processor?.stop();
  await proxy?.close();
  await world?.remove();
});

test("a database outage of several seconds: messages wait unacked, /readyz says 503, one log line per state change, then everything is applied in order and nothing is dead-lettered", async () => {
  const ids = await createSessions(world.sql, 150);
  await publishStep(peer, ids, "starting");
  await waitFor(() => linesWith(processor.logs, "applied").length > 0, 20_000, "first message applied");

  // Cut the database mid-stream; publishing goes on during the outage.
  await proxy.cut();
  const cutAt = Date.now();
  const publishing = (async () => {
    for (const step of ["running", "stopping", "stopped"]) await publishStep(peer, ids, step);
  })();
  await waitFor(async () => (await readyz(processor.url("/readyz"))).status === 503, 15_000, "/readyz 503");
  const during = await readyz(processor.url("/readyz"));
  expect(during.body.database).toStartWith("down");
  expect(during.body.broker).toBe("up");
  await publishing;
  // Held, not failed: the prefetch window bounds what this process holds.
  await waitFor(() => linesWith(processor.logs, "database unreachable; holding messages until it answers").length === 1, 15_000, "outage logged");
  // Several seconds of outage.
  await Bun.sleep(Math.max(0, 5000 - (Date.now() - cutAt)));
  expect(processor.service.metrics.get("manman_database_up")).toBe(0);
  const held = Number((await (await fetch(processor.url("/metrics"))).text()).match(/^manman_event_messages_in_flight (\d+)/m)?.[1]);
  expect(held).toBeGreaterThan(0);
  expect(held).toBeLessThanOrEqual(PREFETCH);
  expect(peer.deadLettered).toHaveLength(0);

  await proxy.restore();
  await waitAllStopped(world.sql, ids);
  await waitFor(async () => (await readyz(processor.url("/readyz"))).status === 200, 15_000, "/readyz 200 again");

  expect(peer.deadLettered).toHaveLength(0);
  expect(await inconsistentSessions(world.sql)).toBe(0);
  await waitAllAnnounced(peer, ids);
  // One line per change of state, not one per message.
  expect(linesWith(processor.logs, "database unreachable; holding messages until it answers")).toHaveLength(1);
  expect(linesWith(processor.logs, "database reachable again; resuming")).toHaveLength(1);
  // Order kept: nothing applied out of order would be a stale duplicate or a skip.
  expect(linesWith(processor.logs, "ignored stale redelivery")).toHaveLength(0);
  // No retry storm: waiting out the outage is not a message's retry.
  expect(linesWith(processor.logs, "transient failure; retrying").length).toBeLessThanOrEqual(5);
  const warnings = processor.logs.filter((l) => (l.level === "warn" || l.level === "error") && !String(l.component ?? "").startsWith("log_"));
  expect(warnings.length).toBeLessThan(20);
}, 120_000);

test("connections killed by the database (pg_terminate_backend) mid-stream: everything applied in order, nothing dead-lettered", async () => {
  const ids = await createSessions(world.sql, 150, 1000);
  const retriesBefore = linesWith(processor.logs, "transient failure; retrying").length;
  await publishStep(peer, ids, "starting");
  await publishStep(peer, ids, "running");
  await waitFor(() => linesWith(processor.logs, "applied").length > 0, 20_000, "flowing");
  const killed = await world.sql`
    SELECT pg_terminate_backend(pid) FROM pg_stat_activity
    WHERE datname = ${world.db.name} AND application_name LIKE 'manman-processor%'`;
  await publishStep(peer, ids, "stopping");
  await publishStep(peer, ids, "stopped");
  await waitAllStopped(world.sql, ids);
  await waitAllAnnounced(peer, ids);
  console.log(`terminated ${killed.length} processor connections; ${processor.service.metrics.total("manman_database_connection_losses_total")} statements run again`);
  expect(killed.length).toBeGreaterThan(0);
  expect(peer.deadLettered).toHaveLength(0);
  expect(await inconsistentSessions(world.sql)).toBe(0);
  expect(linesWith(processor.logs, "ignored stale redelivery")).toHaveLength(0);
  // Statements on a killed connection run again without counting as the
  // message's retries, and the log says so once, not once per statement.
  expect(linesWith(processor.logs, "transient failure; retrying").length - retriesBefore).toBe(0);
  expect(linesWith(processor.logs, "database connection lost under a statement; running it again").length).toBeLessThanOrEqual(2);
  expect((await readyz(processor.url("/readyz"))).status).toBe(200);
}, 60_000);

test("a database that stops answering without closing anything (a frozen network): /readyz 503 within seconds, messages held, then applied when it answers again", async () => {
  const ids = await createSessions(world.sql, 100, 2000);
  await publishStep(peer, ids, "starting");
  await waitAllStarting(ids);
  const outagesBefore = linesWith(processor.logs, "database unreachable; holding messages until it answers").length;
  proxy.freeze();
  await publishStep(peer, ids, "running");
  await publishStep(peer, ids, "stopping");
  // Only timeouts can tell: the probe's own (2 s) and the connect timeout.
  await waitFor(async () => (await readyz(processor.url("/readyz"))).status === 503, 15_000, "/readyz 503");
  await waitFor(() => linesWith(processor.logs, "database unreachable; holding messages until it answers").length === outagesBefore + 1, 15_000, "outage logged");
  await publishStep(peer, ids, "stopped");
  await Bun.sleep(2000);
  expect(peer.deadLettered).toHaveLength(0);
  proxy.thaw();
  await waitAllStopped(world.sql, ids);
  await waitFor(async () => (await readyz(processor.url("/readyz"))).status === 200, 15_000, "/readyz 200 again");
  await waitAllAnnounced(peer, ids);
  expect(peer.deadLettered).toHaveLength(0);
  expect(await inconsistentSessions(world.sql)).toBe(0);
  expect(linesWith(processor.logs, "database unreachable; holding messages until it answers")).toHaveLength(outagesBefore + 1);
  expect(linesWith(processor.logs, "ignored stale redelivery")).toHaveLength(0);
}, 90_000);

async function waitAllStarting(ids: number[]): Promise<void> {
  await waitFor(async () => {
    const [row] = await world.sql<{ n: string }[]>`SELECT count(*) AS n FROM sessions WHERE session_id = ANY(${ids}::bigint[]) AND status = 'starting'`;
    return Number(row!.n) === ids.length;
  }, 20_000, "all starting");
}
