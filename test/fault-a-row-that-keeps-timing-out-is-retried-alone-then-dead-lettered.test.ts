import { afterAll, afterEach, beforeAll, expect, test } from "bun:test";
import { BrokerPeer, insertServer, startProcessor, testWorld, waitFor, type RunningProcessor } from "./support/processor.ts";
import { createSessions, linesWith, publishStep, readyz, sessionMessage, waitAllStopped } from "./support/faults.ts";

let world: Awaited<ReturnType<typeof testWorld>>;
let peer: BrokerPeer;
let processor: RunningProcessor | undefined;

beforeAll(async () => {
  world = await testWorld("retries");
  peer = await BrokerPeer.connect(world.vhost.url);
});
afterEach(async () => {
  await processor?.stop();
  processor = undefined;
});
afterAll(async () => {
  await peer?.close();
  await world?.remove();
});

// 300 ms statement timeout: a statement stuck on a row lock fails fast,
// while the database itself keeps answering (the failure is the row's).
const FAST_TIMEOUT = { DB_STATEMENT_TIMEOUT_MS: "300", LOG_LEVEL: "info" };

/** Holds a row lock from another session until `release` resolves. */
function holdRow(table: "sessions" | "servers", id: number, release: Promise<void>): Promise<void> {
  return new Promise((locked, failed) => {
    world.sql
      .begin(async (tx) => {
        if (table === "sessions") await tx`SELECT 1 FROM sessions WHERE session_id = ${id} FOR UPDATE`;
        else await tx`SELECT 1 FROM servers WHERE server_id = ${id} FOR UPDATE`;
        locked();
        await release;
      })
      .catch(failed);
  });
}

test("a session whose row keeps timing out is retried with backoff while other sessions flow; it then completes in order", async () => {
  // Eight retries (~12 s of backoff) leave room for a busy machine.
  processor = await startProcessor(world.vhost, world.db, { ...FAST_TIMEOUT, MAX_RETRIES: "8" });
  const [stuck, ...others] = (await createSessions(world.sql, 51)) as [number, ...number[]];
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const lock = holdRow("sessions", stuck, released);
  await lock;
  for (const step of ["starting", "running", "stopping", "stopped"]) {
    const m = sessionMessage(stuck, step);
    await peer.publish(m.key, m.body);
    await publishStep(peer, others, step);
  }
  // Everyone else finishes while the stuck session is still being retried.
  await waitAllStopped(world.sql, others, 30_000);
  const retries = () => linesWith(processor!.logs, "transient failure; retrying");
  await waitFor(() => retries().length > 0, 10_000, "a retry");
  expect((await world.sql`SELECT status FROM sessions WHERE session_id = ${stuck}`)[0]!.status).toBe("pending");
  release();

  await waitAllStopped(world.sql, [stuck], 20_000);
  // Only the stuck session was retried, within its budget, and in order:
  // nothing dead-lettered, nothing stale.
  expect(retries().every((l) => l.session_id === stuck)).toBe(true);
  expect(retries().length).toBeLessThanOrEqual(8);
  expect(retries().map((l) => l.attempt)).toEqual(retries().map((_, i) => i + 1));
  expect(peer.deadLettered).toHaveLength(0);
  expect(linesWith(processor.logs, "ignored stale redelivery")).toHaveLength(0);
  // Not an outage: the database answered all along.
  expect(linesWith(processor.logs, "database unreachable; holding messages until it answers")).toHaveLength(0);
  expect((await readyz(processor.url("/readyz"))).status).toBe(200);
}, 60_000);

test("after the last retry the message is dead-lettered with its reason and attempt count, and the host's later messages follow", async () => {
  processor = await startProcessor(world.vhost, world.db, { ...FAST_TIMEOUT, MAX_RETRIES: "2" });
  const stuck = await insertServer(world.sql, "stuck-host");
  const fine = await insertServer(world.sql, "fine-host");
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  await holdRow("servers", stuck, released);
  await peer.publish(`status.host.${stuck}`, { server_id: stuck, status: "online" });
  await peer.publish(`status.host.${fine}`, { server_id: fine, status: "online" });
  await waitFor(() => peer.deadLettered.length === 1, 20_000, "dead-lettered after the last attempt");
  const [dead] = peer.deadLettered;
  expect(dead!.routingKey).toBe(`status.host.${stuck}`);
  expect(dead!.headers["x-attempts"]).toBe(3);
  expect(String(dead!.headers["x-death-reason"])).toContain("failed 3 times");
  expect(String(dead!.headers["x-death-reason"])).toContain("statement timeout");
  expect((await world.sql`SELECT status FROM servers WHERE server_id = ${fine}`)[0]!.status).toBe("online");
  const retries = linesWith(processor.logs, "transient failure; retrying");
  expect(retries).toHaveLength(2);
  // Capped exponential backoff with jitter: the second wait's ceiling is twice the first's.
  expect(Number(retries[0]!.retry_in_ms)).toBeLessThanOrEqual(100);
  expect(Number(retries[1]!.retry_in_ms)).toBeLessThanOrEqual(200);
  release();
  await peer.publish(`status.host.${stuck}`, { server_id: stuck, status: "offline" });
  await waitFor(async () => (await world.sql`SELECT status FROM servers WHERE server_id = ${stuck}`)[0]!.status === "offline", 10_000, "later message applied");
  expect(peer.deadLettered).toHaveLength(1);
}, 60_000);

test("a heartbeat group that one locked row fails is run again server by server: only that server's heartbeat is retried", async () => {
  processor = await startProcessor(world.vhost, world.db, { ...FAST_TIMEOUT, MAX_RETRIES: "8" });
  const stuck = await insertServer(world.sql, "stuck-heartbeat", "online");
  const fine = await Promise.all([1, 2, 3, 4].map((i) => insertServer(world.sql, `fine-heartbeat-${i}`, "online")));
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  await holdRow("servers", stuck, released);
  const before = new Date(Date.now() - 1000);
  const deadBefore = peer.deadLettered.length; // the file's earlier tests dead-letter one
  // Published at once, they arrive together and are written as one group.
  await Promise.all([stuck, ...fine].map((id) => peer.publish(`health.host.${id}`, { server_id: id, session_stats: { total: 0 } })));
  await waitFor(async () => {
    const rows = await world.sql`SELECT last_seen FROM servers WHERE server_id IN ${world.sql(fine)}`;
    return rows.every((r) => new Date(r.last_seen) > before);
  }, 20_000, "the others' heartbeats written");
  const retries = () => linesWith(processor!.logs, "transient failure; retrying");
  await waitFor(() => retries().length > 0, 10_000, "a retry of the stuck one");
  expect(retries().every((l) => l.server_id === stuck)).toBe(true);
  release();
  await waitFor(async () => new Date((await world.sql`SELECT last_seen FROM servers WHERE server_id = ${stuck}`)[0]!.last_seen) > before, 20_000);
  expect(peer.deadLettered).toHaveLength(deadBefore);
}, 60_000);
