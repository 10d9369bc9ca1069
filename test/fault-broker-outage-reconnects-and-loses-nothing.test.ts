import { afterAll, beforeAll, expect, test } from "bun:test";
import { AMQPClient, type AMQPChannel } from "@cloudamqp/amqp-client";
import { BrokerPeer, insertServer, startProcessor, testWorld, waitFor, type RunningProcessor } from "./support/processor.ts";
import { TcpProxy } from "./support/tcp-proxy.ts";
import { BROKER_HOST, BROKER_PORT } from "./support/services.ts";
import { countSessions, createSessions, inconsistentSessions, linesWith, publishStep, readyz, sessionMessage, waitAllAnnounced, waitAllStopped } from "./support/faults.ts";

let world: Awaited<ReturnType<typeof testWorld>>;
let proxy: TcpProxy;
let processor: RunningProcessor;
let peer: BrokerPeer;
let admin: AMQPClient;
let ops: AMQPChannel;

beforeAll(async () => {
  world = await testWorld("brokerout");
  proxy = await TcpProxy.start(BROKER_HOST, BROKER_PORT);
  processor = await startProcessor(world.vhost, world.db, { RABBITMQ_URL: proxy.route(world.vhost.url), LOG_LEVEL: "info" });
  // Host managers and downstream talk to the broker directly: only the
  // processor's connection goes through the proxy.
  peer = await BrokerPeer.connect(world.vhost.url);
  admin = new AMQPClient(world.vhost.url);
  await admin.connect();
  ops = await admin.channel();
});
afterAll(async () => {
  await proxy?.restore();
  await admin?.close().catch(() => {});
  await peer?.close();
  await processor?.stop();
  await proxy?.close();
  await world?.remove();
});

const ready = () => readyz(processor.url("/readyz"));

test("a broker outage of several seconds while host managers keep publishing: /readyz 503, reconnect, every transition applied and announced, a change committed during the outage announced after it", async () => {
  const ids = await createSessions(world.sql, 150);
  await publishStep(peer, ids, "starting");
  await waitFor(async () => (await countSessions(world.sql, "starting")) === ids.length, 30_000, "all starting");

  // One session's change will commit while the broker is down: its row is
  // locked so the processor's statement waits, the broker goes, the lock goes.
  const [held, ...rest] = ids as [number, ...number[]];
  const committedDuringOutage = world.sql.begin(async (tx) => {
    await tx`SELECT 1 FROM sessions WHERE session_id = ${held} FOR UPDATE`;
    const m = sessionMessage(held, "running");
    await peer.publish(m.key, m.body);
    await waitFor(async () => {
      const [row] = await world.sql<{ n: string }[]>`SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = ${world.db.name}`;
      return Number(row!.n) > 0;
    }, 10_000, "the processor waits for the row lock");
    await proxy.cut();
  });
  await committedDuringOutage;
  const cutAt = Date.now();

  // Publishing goes on straight to the broker during the outage.
  await publishStep(peer, rest, "running");
  await waitFor(async () => (await ready()).status === 503, 10_000, "/readyz 503");
  const during = await ready();
  expect(during.body.broker).toStartWith("down");
  expect(during.body.event_consumer).toStartWith("down");
  await publishStep(peer, rest, "stopping");
  await publishStep(peer, rest, "stopped");
  await Bun.sleep(Math.max(0, 5000 - (Date.now() - cutAt)));
  expect((await ready()).status).toBe(503);
  // The held session's change committed, its event could not be published.
  expect((await world.sql`SELECT status FROM sessions WHERE session_id = ${held}`)[0]!.status).toBe("running");

  await proxy.restore();
  await waitFor(async () => (await ready()).status === 200, 30_000, "/readyz 200 after reconnect");
  for (const step of ["stopping", "stopped"]) {
    const m = sessionMessage(held, step);
    await peer.publish(m.key, m.body);
  }
  await waitAllStopped(world.sql, ids);
  await waitAllAnnounced(peer, ids);

  expect(peer.deadLettered).toHaveLength(0);
  expect(await inconsistentSessions(world.sql)).toBe(0);
  await waitFor(async () => Number((await world.sql`SELECT count(*) AS n FROM processor_outbox`)[0]!.n) === 0, 20_000, "outbox empty");
  // One line per change of state.
  expect(linesWith(processor.logs, "broker connection lost; reconnecting")).toHaveLength(1);
  expect(linesWith(processor.logs, "broker connection restored")).toHaveLength(1);
  expect(linesWith(processor.logs, "event consumer attached again")).toHaveLength(1);
  expect(linesWith(processor.logs, "external events not confirmed by the broker; the outbox relay will publish them").length).toBeLessThanOrEqual(1);
  expect(linesWith(processor.logs, "transient failure; retrying")).toHaveLength(0);
  // (The log streaming side reports its own channel; counted here: the event side.)
  const eventSide = processor.logs.filter((l) => !String(l.component ?? "").startsWith("log_"));
  expect(eventSide.filter((l) => l.level === "warn" || l.level === "error").length).toBeLessThanOrEqual(3);
}, 120_000);

test("a broker that lost the queue: the processor redeclares the queue and its bindings and consumes again", async () => {
  const serverId = await insertServer(world.sql, "after-queue-loss");
  await proxy.cut();
  await ops.queueDelete("processor-events");
  await proxy.restore();
  await waitFor(async () => (await ready()).status === 200, 30_000, "/readyz 200 after reconnect");
  await peer.publish(`status.host.${serverId}`, { server_id: serverId, status: "online" });
  await waitFor(async () => (await world.sql`SELECT status FROM servers WHERE server_id = ${serverId}`)[0]!.status === "online", 20_000, "host online");
  expect(peer.deadLettered).toHaveLength(0);
}, 60_000);

test("a consumer cancelled on a live connection (queue deleted by an operator) is re-attached", async () => {
  const serverId = await insertServer(world.sql, "after-queue-delete");
  const before = linesWith(processor.logs, "event consumer attached again").length;
  await ops.queueDelete("processor-events");
  await waitFor(() => linesWith(processor.logs, "event consumer attached again").length > before, 20_000, "re-attached");
  expect(linesWith(processor.logs, "event consumer lost its channel; re-attaching").length).toBeGreaterThan(0);
  await peer.publish(`status.host.${serverId}`, { server_id: serverId, status: "online" });
  await waitFor(async () => (await world.sql`SELECT status FROM servers WHERE server_id = ${serverId}`)[0]!.status === "online", 20_000, "host online");
  expect((await ready()).status).toBe(200);
}, 60_000);

test("while the broker refuses the external publishes, changes still commit; their events are announced once it takes them again", async () => {
  const ids = await createSessions(world.sql, 20, 10_000);
  for (const step of ["starting", "running"]) await publishStep(peer, ids, step);
  await waitFor(async () => (await world.sql`SELECT count(*) AS n FROM sessions WHERE session_id = ANY(${ids}::bigint[]) AND status = 'running'`)[0]!.n == ids.length, 20_000, "all running");
  await waitFor(() => ids.every((id) => peer.events("manman.session.running").some((e) => (e.body as { session_id: number }).session_id === id)), 20_000, "running announced");

  // The external exchange disappears: every publish to it is refused (404).
  await ops.exchangeDelete("external");
  for (const step of ["stopping", "stopped"]) await publishStep(peer, ids, step);
  await waitAllStopped(world.sql, ids);
  expect(peer.deadLettered).toHaveLength(0);
  await waitFor(() => linesWith(processor.logs, "external events not confirmed by the broker; the outbox relay will publish them").length > 0, 10_000, "refusal logged");
  const waiting = Number((await world.sql`SELECT count(*) AS n FROM processor_outbox`)[0]!.n);
  expect(waiting).toBe(ids.length);
  // What an operator alerts on: events waiting, refusals counted.
  await waitFor(() => processor.service.metrics.get("manman_outbox_events_waiting") === ids.length, 15_000, "outbox gauge");
  expect(processor.service.metrics.total("manman_external_events_deferred_total")).toBeGreaterThanOrEqual(ids.length);

  // It comes back (as an operator or the processor's next reconnect would
  // declare it) and downstream binds again: the relay announces the rest.
  // (What the relay publishes before the binding exists reaches the tap
  // through the alternate exchange, so the test sees every event.)
  const q = await ops.queueDeclare("", { exclusive: true });
  const late: string[] = [];
  await ops.basicConsume(q.name, { noAck: true }, (m) => void late.push(m.bodyString() ?? ""));
  await ops.exchangeDeclare("external-tap", "fanout", { durable: false });
  await ops.queueBind(q.name, "external-tap", "");
  await ops.exchangeDeclare("external", "topic", { durable: true }, { "alternate-exchange": "external-tap" });
  await ops.queueBind(q.name, "external", "#");
  await waitFor(() => ids.every((id) => late.some((b) => JSON.parse(b).session_id === id && JSON.parse(b).status === "stopped")), 30_000, "stops announced after the refusal");
  await waitFor(async () => Number((await world.sql`SELECT count(*) AS n FROM processor_outbox`)[0]!.n) === 0, 20_000, "outbox empty");
  expect(linesWith(processor.logs, "external events confirmed again").length).toBeGreaterThan(0);
  expect((await ready()).status).toBe(200);
}, 90_000);
