import { afterAll, beforeAll, expect, test } from "bun:test";
import { BrokerPeer, startProcessor, testWorld, waitFor, type RunningProcessor } from "./support/processor.ts";

let world: Awaited<ReturnType<typeof testWorld>>;
let processor: RunningProcessor;
let peer: BrokerPeer;

beforeAll(async () => {
  world = await testWorld("interleaved");
  processor = await startProcessor(world.vhost, world.db, { LOG_LEVEL: "info" });
  peer = await BrokerPeer.connect(world.vhost.url);
});
afterAll(async () => {
  await peer?.close();
  await processor?.stop();
  await world?.remove();
});

test("300 sessions × 4 transitions published interleaved all end stopped, nothing dead-lettered", async () => {
  const SESSIONS = 300;
  // Each session gets its own game server config, so no session supersedes another.
  const rows = await world.sql<{ session_id: string }[]>`
    INSERT INTO sessions (sgc_id) SELECT g FROM generate_series(1, ${SESSIONS}) g RETURNING session_id`;
  const ids = rows.map((r) => Number(r.session_id));
  const steps = ["starting", "running", "stopping", "stopped"];
  // Round-robin: step 1 of every session, then step 2 of every session, …
  // so consecutive messages always belong to different sessions.
  for (const status of steps) {
    await Promise.all(
      ids.map((id, i) => peer.publish(`status.session.${id}`, { session_id: id, sgc_id: i + 1, status, ...(status === "stopped" ? { exit_code: 0 } : {}) })),
    );
  }
  await waitFor(
    async () => Number((await world.sql`SELECT count(*) AS n FROM sessions WHERE status = 'stopped'`)[0]!.n) === SESSIONS,
    45_000,
    "every session stopped",
  );
  const bad = await world.sql`SELECT count(*) AS n FROM sessions WHERE started_at IS NULL OR ended_at IS NULL OR exit_code IS DISTINCT FROM 0`;
  expect(Number(bad[0]!.n)).toBe(0);
  await waitFor(() => peer.events("manman.session.stopped").length === SESSIONS, 20_000, "every stop announced");
  expect(peer.events("manman.session.running")).toHaveLength(SESSIONS);
  expect(peer.deadLettered).toHaveLength(0);
  // Everything confirmed leaves the outbox.
  await waitFor(async () => Number((await world.sql`SELECT count(*) AS n FROM processor_outbox`)[0]!.n) === 0, 10_000, "outbox empty");
});
