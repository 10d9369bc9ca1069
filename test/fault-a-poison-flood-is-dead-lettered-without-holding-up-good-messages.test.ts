import { afterAll, beforeAll, expect, test } from "bun:test";
import { BrokerPeer, startProcessor, testWorld, waitFor, type RunningProcessor } from "./support/processor.ts";
import { createSessions, LIFECYCLE, linesWith, readyz, sessionMessage, waitAllStopped } from "./support/faults.ts";

let world: Awaited<ReturnType<typeof testWorld>>;
let processor: RunningProcessor;
let peer: BrokerPeer;

const MAX_BYTES = 4096;

beforeAll(async () => {
  world = await testWorld("poison");
  processor = await startProcessor(world.vhost, world.db, { LOG_LEVEL: "info", MAX_MESSAGE_BYTES: String(MAX_BYTES) });
  peer = await BrokerPeer.connect(world.vhost.url);
});
afterAll(async () => {
  await peer?.close();
  await processor?.stop();
  await world?.remove();
});

/** The i-th poison message: each kind of input that can never succeed, in turn. */
function poison(i: number): { key: string; body: unknown; reason: string } {
  switch (i % 6) {
    case 0:
      return { key: "status.session.999999", body: `{"session_id": ${i}, oops`, reason: "not JSON" };
    case 1:
      return { key: "status.host.999999", body: { server_id: `x${i}`, status: "online" }, reason: "server_id" };
    case 2:
      return { key: "status.session.999999", body: { session_id: i, sgc_id: 1, status: "exploded" }, reason: "must be one of" };
    case 3:
      return { key: "health.host.999999", body: JSON.stringify({ server_id: 1, pad: "x".repeat(MAX_BYTES) }), reason: "exceeds MAX_MESSAGE_BYTES" };
    case 4:
      return { key: `status.session.${900_000 + i}`, body: { session_id: 900_000 + i, sgc_id: 1, status: "starting" }, reason: "does not exist" };
    default:
      return { key: "status.host.999999", body: new Uint8Array([0xff, 0xfe, i & 0xff]), reason: "not JSON" };
  }
}

test("1,000 poison messages interleaved with 100 good ones: all 1,000 dead-lettered with their reason, the good ones applied", async () => {
  const ids = await createSessions(world.sql, 25);
  const good = LIFECYCLE.flatMap((step) => ids.map((id) => sessionMessage(id, step)));
  expect(good).toHaveLength(100);
  const started = performance.now();
  // Ten poison messages before each good one, published in order.
  let p = 0;
  for (const m of good) {
    const batch = Array.from({ length: 10 }, () => poison(p++));
    await Promise.all(batch.map((b) => peer.publish(b.key, b.body)));
    await peer.publish(m.key, m.body);
  }
  const published = performance.now();
  await waitAllStopped(world.sql, ids, 60_000);
  const goodDone = performance.now();
  await waitFor(() => peer.deadLettered.length >= 1000, 60_000, "all poison dead-lettered");
  const poisonDone = performance.now();
  console.log(
    `poison flood: published in ${Math.round(published - started)} ms; good ones all applied ${Math.round(goodDone - published)} ms after the last publish; poison all dead-lettered after ${Math.round(poisonDone - published)} ms`,
  );

  // Promptly: not queued behind the flood (a generous bound for a busy machine; the figure above is the measure).
  expect(goodDone - published).toBeLessThan(15_000);
  expect(peer.deadLettered).toHaveLength(1000);
  for (const d of peer.deadLettered) {
    expect(typeof d.headers["x-death-reason"]).toBe("string");
    expect(d.headers["x-attempts"]).toBe(1);
  }
  // Every kind arrived with its own reason.
  const reasons = peer.deadLettered.map((d) => String(d.headers["x-death-reason"]));
  for (let k = 0; k < 6; k++) expect(reasons.filter((r) => r.includes(poison(k).reason)).length).toBeGreaterThanOrEqual(166);
  // The good ones: applied in order, none dead-lettered.
  expect(peer.deadLettered.some((d) => ids.some((id) => d.routingKey === `status.session.${id}`))).toBe(false);
  expect(linesWith(processor.logs, "ignored stale redelivery")).toHaveLength(0);
  // One line per refused message (with its reason), no retries.
  expect(linesWith(processor.logs, "dead-lettered event message")).toHaveLength(1000);
  expect(linesWith(processor.logs, "transient failure; retrying")).toHaveLength(0);
  expect(processor.service.metrics.total("manman_event_messages_dead_lettered_total")).toBe(1000);
  expect((await readyz(processor.url("/readyz"))).status).toBe(200);
}, 120_000);
