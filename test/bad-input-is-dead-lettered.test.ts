import { afterAll, beforeAll, expect, test } from "bun:test";
import { BrokerPeer, insertServer, insertSession, startProcessor, testWorld, waitFor, type RunningProcessor } from "./support/processor.ts";

let world: Awaited<ReturnType<typeof testWorld>>;
let processor: RunningProcessor;
let peer: BrokerPeer;

beforeAll(async () => {
  world = await testWorld("badinput");
  processor = await startProcessor(world.vhost, world.db, { MAX_MESSAGE_BYTES: "4096" });
  peer = await BrokerPeer.connect(world.vhost.url);
});
afterAll(async () => {
  await peer?.close();
  await processor?.stop();
  await world?.remove();
});

test("every kind of bad input is dead-lettered with its reason while good messages keep flowing", async () => {
  const serverId = await insertServer(world.sql, "good-host");
  const sessionId = await insertSession(world.sql, 1);
  const bad: [string, unknown, string][] = [
    ["status.host.1", "{not json", "not JSON"],
    ["status.host.1", { status: "online" }, "server_id"],
    ["status.host.1", { server_id: "1", status: "online" }, "server_id"],
    ["status.host.1", { server_id: 1, status: "asleep" }, "online or offline"],
    ["status.session.1", { session_id: 1, sgc_id: 1, status: "paused" }, "must be one of"],
    ["status.session.424242", { session_id: 424242, sgc_id: 1, status: "starting" }, "session 424242 does not exist"],
    ["status.host.535353", { server_id: 535353, status: "online" }, "server 535353 does not exist"],
    ["status.session.1", { session_id: sessionId, sgc_id: 1, status: "stopping" }, "illegal transition pending -> stopping"],
    ["health.host.1", JSON.stringify({ server_id: 1, pad: "x".repeat(5000) }), "exceeds MAX_MESSAGE_BYTES"],
    ["health.host.1", new Uint8Array([0xff, 0x00, 0xfe]), "not JSON"],
  ];
  // Bad and good interleaved: the good ones must not wait behind the bad.
  for (const [i, [key, body]] of bad.entries()) {
    await peer.publish(key, body);
    await peer.publish(`health.host.${serverId}`, { server_id: serverId, n: i });
  }
  await peer.publish(`status.session.${sessionId}`, { session_id: sessionId, sgc_id: 1, status: "starting" });

  await waitFor(() => peer.deadLettered.length >= bad.length, 20_000, "all bad messages dead-lettered");
  const reasons = peer.deadLettered.map((d) => String(d.headers["x-death-reason"]));
  for (const [, , reason] of bad) expect(reasons.some((r) => r.includes(reason))).toBe(true);
  for (const d of peer.deadLettered) expect(d.headers["x-attempts"]).toBe(1);

  await waitFor(async () => (await world.sql`SELECT status FROM sessions WHERE session_id = ${sessionId}`)[0]!.status === "starting");
  expect((await world.sql`SELECT status FROM servers WHERE server_id = ${serverId}`)[0]!.status).toBe("online");
  // Each refusal is logged with its reason and counted.
  expect(processor.logs.filter((l) => l.msg === "dead-lettered event message")).toHaveLength(bad.length);
  expect(processor.service.metrics.total("manman_event_messages_dead_lettered_total")).toBe(bad.length);
  // Still alive and ready.
  expect((await fetch(processor.url("/readyz"))).status).toBe(200);
});
