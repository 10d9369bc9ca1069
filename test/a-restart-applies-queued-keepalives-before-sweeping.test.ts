/**
 * While the processor is down, keepalives and heartbeats wait in the queue.
 * After a start, each stale sweep waits one threshold, so those are applied
 * before anything is judged silent: a session downloading addons is not
 * marked lost (which is final) and a live host does not flap offline.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { BrokerPeer, insertServer, insertSession, startProcessor, testWorld, type RunningProcessor } from "./support/processor.ts";
import { backdateUpdatedAt } from "./support/manmanv2-schema.ts";
import { waitFor } from "./support/services.ts";

const ENV = { STALE_SESSION_THRESHOLD_SECONDS: "3", STALE_HOST_THRESHOLD_SECONDS: "3", STALE_CHECK_INTERVAL_SECONDS: "1" };
let world: Awaited<ReturnType<typeof testWorld>>;
let processor: RunningProcessor | undefined;
let peer: BrokerPeer;

beforeAll(async () => {
  world = await testWorld("restartsweep");
  processor = await startProcessor(world.vhost, world.db, ENV); // declares the queue, then goes away
  await processor.stop();
  processor = undefined;
  peer = await BrokerPeer.connect(world.vhost.url);
});

afterAll(async () => {
  await peer?.close();
  await processor?.stop();
  await world?.remove();
});

test("a session that kept alive and a host that kept heartbeating while the processor was down are neither lost nor offline after it starts", async () => {
  const sessionId = await insertSession(world.sql, 7, "starting");
  const serverId = await insertServer(world.sql, "quiet-while-down", "online");
  // Both last heard of a minute ago, as far as the database knows.
  await backdateUpdatedAt(world.sql, "sessions", [sessionId], 60);
  await world.sql`UPDATE servers SET last_seen = now() - interval '60 seconds' WHERE server_id = ${serverId}`;
  // What the host sent meanwhile, waiting in the queue.
  await peer.publish(`status.session.${sessionId}`, { session_id: sessionId, sgc_id: 0, status: "starting" });
  await peer.publish(`health.host.${serverId}`, { server_id: serverId, session_stats: { total: 1, starting: 1 } });

  processor = await startProcessor(world.vhost, world.db, ENV);
  await waitFor(() => processor!.service.metrics.total("manman_event_messages_total") >= 2);
  await Bun.sleep(1500); // several sweep intervals
  const [session] = await world.sql`SELECT status FROM sessions WHERE session_id = ${sessionId}`;
  const [server] = await world.sql`SELECT status FROM servers WHERE server_id = ${serverId}`;
  expect(session!.status).toBe("starting");
  expect(server!.status).toBe("online");
  expect(peer.events("manman.session.lost")).toEqual([]);
  expect(peer.events("manman.host.stale")).toEqual([]);
});
