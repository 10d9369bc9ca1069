import { afterAll, beforeAll, expect, test } from "bun:test";
import { BrokerPeer, startProcessor, testWorld, waitFor, type RunningProcessor } from "./support/processor.ts";
import { createSessions, LIFECYCLE, linesWith, sessionMessage, waitAllStopped } from "./support/faults.ts";

let world: Awaited<ReturnType<typeof testWorld>>;
let processor: RunningProcessor;
let peer: BrokerPeer;

beforeAll(async () => {
  world = await testWorld("dupes");
  processor = await startProcessor(world.vhost, world.db, { LOG_LEVEL: "info" });
  peer = await BrokerPeer.connect(world.vhost.url);
});
afterAll(async () => {
  await peer?.close();
  await processor?.stop();
  await world?.remove();
});

type Row = { status: string; started_at: Date | null; ended_at: Date | null; exit_code: number | null; updated_at: Date };
const row = async (id: number) => (await world.sql<Row[]>`SELECT status, started_at, ended_at, exit_code, updated_at FROM sessions WHERE session_id = ${id}`)[0]!;
const announced = (id: number, status: string) =>
  peer.events(`manman.session.${status}`).filter((e) => (e.body as { session_id: number }).session_id === id).length;

test("every message delivered twice: the lifecycle is applied once, each event announced once, nothing dead-lettered", async () => {
  const ids = await createSessions(world.sql, 20);
  for (const step of LIFECYCLE) {
    for (const id of ids) {
      const m = sessionMessage(id, step);
      await Promise.all([peer.publish(m.key, m.body), peer.publish(m.key, m.body)]);
    }
  }
  await waitAllStopped(world.sql, ids);
  await waitFor(() => ids.every((id) => announced(id, "stopped") >= 1), 20_000, "stops announced");
  await Bun.sleep(300); // let any duplicate announcement arrive, if one were made
  for (const id of ids) {
    expect(announced(id, "running")).toBe(1);
    expect(announced(id, "stopped")).toBe(1);
  }
  expect(linesWith(processor.logs, "accepted unchanged").length).toBeGreaterThanOrEqual(ids.length * LIFECYCLE.length - 10);
  expect(peer.deadLettered).toHaveLength(0);
});

test("a redelivery after later messages were applied (running and starting after stopped) changes nothing, is acked and not dead-lettered", async () => {
  const [id] = (await createSessions(world.sql, 1, 500)) as [number];
  for (const step of LIFECYCLE) {
    const m = sessionMessage(id, step);
    await peer.publish(m.key, m.body);
  }
  await waitAllStopped(world.sql, [id]);
  await waitFor(() => announced(id, "stopped") === 1, 10_000, "stop announced");
  const before = await row(id);
  const staleBefore = linesWith(processor.logs, "ignored stale redelivery").length;
  for (const step of ["running", "starting", "stopping"]) {
    const m = sessionMessage(id, step);
    await peer.publish(m.key, m.body);
  }
  await waitFor(() => linesWith(processor.logs, "ignored stale redelivery").length === staleBefore + 3, 10_000, "three stale redeliveries acked");
  expect(await row(id)).toEqual(before);
  expect(announced(id, "running")).toBe(1);
  expect(processor.service.metrics.get("manman_event_messages_total", { kind: "session_status", outcome: "stale" })).toBeGreaterThanOrEqual(3);
  expect(peer.deadLettered).toHaveLength(0);
  // Acked, not waiting for redelivery.
  expect(processor.service.metrics.total("manman_event_messages_left_for_redelivery_total")).toBe(0);
});
