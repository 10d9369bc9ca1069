/**
 * Three replicas as real processes, each with its own TCP proxies to the
 * broker and the database. While host managers publish 300 interleaved
 * session lifecycles (4 transitions each) and heartbeats, the active replica
 * is killed (SIGKILL), the next has its broker connection cut, the next its
 * database connection cut, and the next is stopped (SIGTERM): four
 * failovers, each measured from the fault to the first message the
 * successor settles. Every session ends stopped, nothing is dead-lettered,
 * every change is announced, no row ever moves backwards (a trigger records
 * each move), and the log streams of replicas that are not killed never
 * stop: the one on the replica that is never hurt has every line; one moved
 * off the stopped replica is told it was renumbered and misses nothing.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { AMQPClient } from "@cloudamqp/amqp-client";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { SETTINGS } from "../src/config.ts";
import { LogProcessor, type LogMessage } from "../src/gen/manman/v1/log_processor_pb.ts";
import { SERVER_INSTANCE_HEADER } from "../src/logs/server-instance.ts";
import { createSessions, inconsistentSessions, LIFECYCLE, sessionMessage, waitAllAnnounced, waitAllStopped } from "./support/faults.ts";
import { BrokerPeer, declareEventQueue, insertServer, startProcessor, testWorld, waitFor } from "./support/processor.ts";
import { activeOf, failoverFrom, heartbeats, settled, startReplica, stopReplica, watchSessionMoves, type Replica } from "./support/replicas.ts";

const SESSIONS = 300;
const HOSTS = 20;
const LOG_SESSION = 424_242;
const FAILOVER_SECONDS = Number(SETTINGS.failoverSeconds.default);
// The target is FAILOVER_SECONDS + 1 s; the assertion allows a slow, busy
// machine three times that before calling it a failure.
const BOUND_MS = 3 * (FAILOVER_SECONDS + 1) * 1000;

let world: Awaited<ReturnType<typeof testWorld>>;
let peer: BrokerPeer;
let logPublisher: AMQPClient;
const replicas: Replica[] = [];

beforeAll(async () => {
  world = await testWorld("replicas");
  peer = await BrokerPeer.connect(world.vhost.url); // declares the exchanges
  // The queue exists before any replica (as on a live broker), and the tables.
  await declareEventQueue(world.vhost.url);
  await (await startProcessor(world.vhost, world.db, { LOG_LEVEL: "warn" })).stop();
  logPublisher = new AMQPClient(world.vhost.url);
  await logPublisher.connect();
});
afterAll(async () => {
  await Promise.all(replicas.map(stopReplica));
  await logPublisher?.close().catch(() => {});
  await peer?.close();
  await world?.remove();
});

/** An open Connect stream of the log session on one replica. */
function watchLogs(r: Replica, after = 0, numberedBy?: string) {
  const client = createClient(LogProcessor, createConnectTransport({ baseUrl: r.url("") }));
  const got: LogMessage[] = [];
  let instance: string | null = null;
  let endedAt = 0;
  const ac = new AbortController();
  const done = (async () => {
    try {
      const headers = numberedBy ? { [SERVER_INSTANCE_HEADER]: numberedBy } : undefined;
      for await (const m of client.streamSessionLogs({ sessionId: BigInt(LOG_SESSION), afterSequenceNumber: BigInt(after) }, { signal: ac.signal, headers, onHeader: (h) => (instance = h.get(SERVER_INSTANCE_HEADER)) })) got.push(m);
    } catch {}
    endedAt = Date.now();
  })();
  return { got, done, stop: () => ac.abort(), get ended() { return endedAt > 0; }, get endedAt() { return endedAt; }, get instance() { return instance; } };
}
const lineNo = (m: LogMessage) => Number(m.message.slice("line ".length));

test("SIGKILL, a cut broker connection, a cut database connection and SIGTERM: four failovers, nothing lost, nothing reordered, log streams keep going", async () => {
  const moves = await watchSessionMoves(world.sql);
  const ids = await createSessions(world.sql, SESSIONS);
  const servers = await Promise.all(Array.from({ length: HOSTS }, (_, i) => insertServer(world.sql, `replica-host-${i}`)));
  const env = { STALE_SESSION_THRESHOLD_SECONDS: "3600" }; // this test is about failover, not silence
  replicas.push(...(await Promise.all(["r1", "r2", "r3"].map((n) => startReplica(n, world.vhost, world.db, env)))));
  await waitFor(() => settled(replicas), 30_000, "one active, two standbys, all ready");

  // Log lines every 50 ms for the whole test, watched on every replica.
  let logLines = 0;
  let logging = true;
  const logCh = await logPublisher.channel();
  const logLoop = (async () => {
    while (logging) {
      const n = ++logLines;
      await logCh.basicPublish("manman", `logs.session.${LOG_SESSION}`, JSON.stringify({ session_id: LOG_SESSION, timestamp: Date.now(), source: "stdout", message: `line ${n}` }));
      await Bun.sleep(50);
    }
  })();
  const streams = new Map(replicas.map((r) => [r, watchLogs(r)]));

  // Session i's transitions go out 2 s apart from i × 110 ms: ~33 s of
  // interleaved lifecycles, with heartbeats from every host each second.
  const beats = heartbeats((k, b) => peer.publish(k, b), servers, 1000);
  const start = Date.now();
  const schedule = ids.flatMap((id, i) => LIFECYCLE.map((step, k) => ({ at: start + i * 110 + k * 2000, ...sessionMessage(id, step) }))).sort((x, y) => x.at - y.at);
  const publishing = (async () => {
    for (const m of schedule) {
      const wait = m.at - Date.now();
      if (wait > 0) await Bun.sleep(wait);
      await peer.publish(m.key, m.body);
    }
  })();

  const figures: string[] = [];
  const failover = async (what: string, from: Replica, fault: () => Promise<void> | void, candidates: Replica[]) => {
    await Bun.sleep(2000); // some traffic on the holder first
    const at = Date.now();
    await fault();
    const { to, ms } = await failoverFrom(at, candidates);
    figures.push(`${what}: ${from.name} -> ${to.name} in ${ms} ms`);
    expect(ms).toBeLessThan(BOUND_MS);
    expect(await activeOf(candidates)).toBe(to);
    return to;
  };

  // 1. SIGKILL the active replica (first); second takes over, third stands by.
  const first = await activeOf(replicas);
  const second = await failover("SIGKILL", first, () => void first.proc.child.kill("SIGKILL"), replicas.filter((r) => r !== first));
  const third = replicas.find((r) => r !== first && r !== second)!;
  // 2. Cut second's broker connection: third takes over; second comes back as a standby.
  await failover("broker connection cut", second, () => second.broker.cut(), [third]);
  const restoredAt = Date.now();
  await second.broker.restore();
  await waitFor(() => settled([second, third]), 30_000, `${second.name} back as a standby`);
  // 3. Cut third's database connection: it gives the role up to second.
  await failover("database connection cut", third, () => third.db.cut(), [second]);
  await third.db.restore();
  await waitFor(() => settled([second, third]), 30_000, `${third.name} back as a standby`);
  // 4. SIGTERM second: it drains, then lets go to third.
  const stoppedAt = Date.now() + 2000;
  await failover("SIGTERM", second, () => void second.proc.child.kill("SIGTERM"), [third]);
  expect(await second.proc.exited).toBe(0);
  // second's stream ended with UNAVAILABLE; its client moves to third at
  // once, naming the numbering its last number belongs to.
  const moved = streams.get(second)!;
  await waitFor(() => moved.ended, 10_000, "the stopped replica's stream ended");
  const resumed = watchLogs(third, Number(moved.got.at(-1)!.sequenceNumber), moved.instance!);
  console.log(`failovers (target ≤ ${FAILOVER_SECONDS + 1} s):\n  ${figures.join("\n  ")}`);

  await publishing;
  await waitAllStopped(world.sql, ids, 60_000);
  await waitAllAnnounced(peer, ids, 60_000);
  await beats.stop();
  expect(peer.deadLettered).toHaveLength(0);
  expect(await moves.backwards()).toEqual([]);
  expect(await moves.count()).toBe(SESSIONS * LIFECYCLE.length);
  expect(await inconsistentSessions(world.sql)).toBe(0);
  for (const id of servers) expect(peer.events("manman.host.online").some((e) => (e.body as { server_id: number }).server_id === id)).toBe(true);
  await waitFor(async () => Number((await world.sql`SELECT count(*) AS n FROM processor_outbox`)[0]!.n) === 0, 30_000, "outbox empty");

  // second's stream stayed open through its broker cut (lines published
  // meanwhile never reached its queue) and ended only at its SIGTERM; moved
  // to third, it was told it was renumbered and misses nothing.
  expect(moved.endedAt).toBeGreaterThanOrEqual(stoppedAt);
  expect(moved.got.some((m) => Number(m.timestamp) > restoredAt)).toBe(true);
  const lastSeen = lineNo(moved.got.at(-1)!);
  logging = false;
  await logLoop;
  await waitFor(() => resumed.got.length > 0 && lineNo(resumed.got.at(-1)!) === logLines, 20_000, "the moved stream caught up");
  expect(resumed.instance).not.toBe(moved.instance);
  const after = resumed.got.map(lineNo).filter((n) => n > lastSeen);
  expect(after).toEqual(Array.from({ length: logLines - lastSeen }, (_, i) => lastSeen + 1 + i));

  // third's broker connection was never touched: its stream has every line,
  // in order, numbered without a gap, and never ended.
  const whole = streams.get(third)!;
  await waitFor(() => whole.got.length > 0 && lineNo(whole.got.at(-1)!) === logLines, 20_000, "third has every line");
  expect(whole.ended).toBe(false);
  expect(whole.got.map(lineNo)).toEqual(Array.from({ length: logLines }, (_, i) => i + 1));
  expect(whole.got.map((m) => Number(m.sequenceNumber))).toEqual(Array.from({ length: logLines }, (_, i) => i + 1));
  for (const st of [...streams.values(), resumed]) st.stop();
}, 150_000);
