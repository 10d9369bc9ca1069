/**
 * Stale sweeps run on every replica (each is one UPDATE that locks its
 * candidates with SKIP LOCKED and writes the outbox in the same statement):
 * three replicas sweeping the same rows every second change and announce
 * each silent host and stuck session exactly once.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { BrokerPeer, startProcessor, testWorld, waitFor, type RunningProcessor } from "./support/processor.ts";

let world: Awaited<ReturnType<typeof testWorld>>;
let peer: BrokerPeer;
const replicas: RunningProcessor[] = [];

const ENV = { LOG_LEVEL: "warn", STALE_HOST_THRESHOLD_SECONDS: "1", STALE_SESSION_THRESHOLD_SECONDS: "1", STALE_CHECK_INTERVAL_SECONDS: "1" };
// 5 rounds of 100 hosts and 100 sessions, each round committed at once so
// the three replicas' next sweeps all find the same rows.
const ROUNDS = 5;
const PER_ROUND = 100;

beforeAll(async () => {
  world = await testWorld("sweep3");
  peer = await BrokerPeer.connect(world.vhost.url);
  for (let i = 0; i < 3; i++) replicas.push(await startProcessor(world.vhost, world.db, ENV));
});
afterAll(async () => {
  await peer?.close();
  await Promise.all(replicas.map((r) => r.stop()));
  await world?.remove();
});

test("three replicas sweeping together mark each silent host offline and each stuck session lost once, and announce each once", async () => {
  const hosts: number[] = [];
  const sessions: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const [h, s] = await world.sql.begin(async (tx) => [
      await tx<{ server_id: string }[]>`
        INSERT INTO servers (name, status, last_seen)
        SELECT 'sweep-' || ${round} || '-' || g, 'online', now() - interval '1 hour' FROM generate_series(1, ${PER_ROUND}) g
        RETURNING server_id`,
      await tx<{ session_id: string }[]>`
        INSERT INTO sessions (sgc_id, status, updated_at)
        SELECT ${round * PER_ROUND} + g, 'starting', now() - interval '1 hour' FROM generate_series(1, ${PER_ROUND}) g
        RETURNING session_id`,
    ]);
    hosts.push(...h!.map((r) => Number(r.server_id)));
    sessions.push(...s!.map((r) => Number(r.session_id)));
    await Bun.sleep(700); // a different phase of the replicas' 1 s sweeps each round
  }
  const announced = (key: string, field: string) => peer.events(key).map((e) => (e.body as Record<string, number>)[field]!);
  await waitFor(() => announced("manman.host.stale", "server_id").length >= hosts.length && announced("manman.session.lost", "session_id").length >= sessions.length, 30_000, "every change announced");
  // Late duplicates would come from the relay, which waits 10 s for a row: no row may be left.
  await waitFor(async () => Number((await world.sql`SELECT count(*) AS n FROM processor_outbox`)[0]!.n) === 0, 20_000, "outbox empty");
  await Bun.sleep(1000);

  const staleHosts = announced("manman.host.stale", "server_id");
  const lostSessions = announced("manman.session.lost", "session_id");
  expect(staleHosts.sort((x, y) => x - y)).toEqual(hosts);
  expect(lostSessions.sort((x, y) => x - y)).toEqual(sessions);
  const [rows] = await world.sql<{ offline: string; lost: string }[]>`
    SELECT (SELECT count(*) FROM servers WHERE status = 'offline') AS offline, (SELECT count(*) FROM sessions WHERE status = 'lost') AS lost`;
  expect([Number(rows!.offline), Number(rows!.lost)]).toEqual([hosts.length, sessions.length]);
  // The work was shared: the counts add up across replicas to one change per row.
  const perReplica = replicas.map((r) => r.service.metrics.total("manman_stale_hosts_total") + r.service.metrics.total("manman_stale_sessions_total"));
  console.log(`changes swept per replica: ${perReplica.join(", ")}`);
  expect(perReplica.reduce((x, y) => x + y, 0)).toBe(hosts.length + sessions.length);
  expect(peer.deadLettered).toHaveLength(0);
}, 90_000);
