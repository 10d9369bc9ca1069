import { afterAll, beforeAll, expect, test } from "bun:test";
import { BrokerPeer, startProcessor, testWorld, waitFor } from "./support/processor.ts";
import { spawnService } from "./support/subprocess.ts";

let world: Awaited<ReturnType<typeof testWorld>>;
let peer: BrokerPeer;

beforeAll(async () => {
  world = await testWorld("sigterm");
  peer = await BrokerPeer.connect(world.vhost.url);
});
afterAll(async () => {
  await peer?.close();
  await world?.remove();
});

test("SIGTERM stops taking messages, finishes the in-flight ones and exits 0; a restart completes the rest", async () => {
  const env = { RABBITMQ_URL: world.vhost.url, DATABASE_URL: world.db.url, HEALTH_CHECK_PORT: "0", GRPC_PORT: "0", LOG_LEVEL: "info" };
  const proc = spawnService(env);
  await proc.ready;
  const SESSIONS = 400;
  const rows = await world.sql<{ session_id: string }[]>`
    INSERT INTO sessions (sgc_id) SELECT g FROM generate_series(1, ${SESSIONS}) g RETURNING session_id`;
  const ids = rows.map((r) => Number(r.session_id));
  for (const status of ["starting", "running", "stopping", "stopped"]) {
    await Promise.all(ids.map((id, i) => peer.publish(`status.session.${id}`, { session_id: id, sgc_id: i + 1, status })));
  }
  // Signal while messages are still flowing in.
  await waitFor(() => proc.lines.some((l) => l.msg === "applied"), 20_000, "first message applied");
  proc.child.kill("SIGTERM");
  const code = await proc.exited;
  expect(code).toBe(0);
  expect(proc.lines.some((l) => l.msg === "stopped")).toBe(true);
  expect(proc.lines.some((l) => l.msg === "drain deadline passed; unfinished messages will be redelivered")).toBe(false);
  // No half-applied change: every session is at a state of the machine,
  // with started_at exactly when it has been running.
  const inconsistent = await world.sql`
    SELECT count(*) AS n FROM sessions
    WHERE (status IN ('running', 'stopping', 'stopped') AND started_at IS NULL)
       OR (status = 'stopped' AND ended_at IS NULL)`;
  expect(Number(inconsistent[0]!.n)).toBe(0);

  // What was left in the queue is applied by the next process.
  const next = await startProcessor(world.vhost, world.db, { LOG_LEVEL: "info" });
  try {
    await waitFor(
      async () => Number((await world.sql`SELECT count(*) AS n FROM sessions WHERE status = 'stopped'`)[0]!.n) === SESSIONS,
      45_000,
      "every session stopped after restart",
    );
    expect(peer.deadLettered).toHaveLength(0);
  } finally {
    await next.stop();
  }
});

test("a second signal exits at once", async () => {
  const env = { RABBITMQ_URL: world.vhost.url, DATABASE_URL: world.db.url, HEALTH_CHECK_PORT: "0", GRPC_PORT: "0" };
  const proc = spawnService(env);
  await proc.ready;
  // Hold the database so the drain cannot finish: lock a session row.
  const [row] = await world.sql<{ session_id: string }[]>`INSERT INTO sessions (sgc_id) VALUES (9999) RETURNING session_id`;
  const id = Number(row!.session_id);
  await world.sql.begin(async (tx) => {
    await tx`SELECT 1 FROM sessions WHERE session_id = ${id} FOR UPDATE`;
    await peer.publish(`status.session.${id}`, { session_id: id, sgc_id: 9999, status: "starting" });
    await Bun.sleep(300);
    proc.child.kill("SIGTERM");
    await waitFor(() => proc.lines.some((l) => l.msg === "shutting down: no new messages, draining in-flight ones"));
    proc.child.kill("SIGTERM");
    expect(await proc.exited).toBe(1);
  });
});
