import { expect, test } from "bun:test";
import { useProcessor, waitFor } from "./support/processor.ts";

const f = useProcessor("interleaved", { LOG_LEVEL: "info" });

test("300 sessions × 4 transitions published interleaved all end stopped, nothing dead-lettered", async () => {
  const SESSIONS = 300;
  // Each session gets its own game server config, so no session supersedes another.
  const rows = await f.world.sql<{ session_id: string }[]>`
    INSERT INTO sessions (sgc_id) SELECT g FROM generate_series(1, ${SESSIONS}) g RETURNING session_id`;
  const ids = rows.map((r) => Number(r.session_id));
  const steps = ["starting", "running", "stopping", "stopped"];
  // Round-robin: step 1 of every session, then step 2 of every session, …
  // so consecutive messages always belong to different sessions.
  for (const status of steps) {
    await Promise.all(
      ids.map((id, i) => f.peer.publish(`status.session.${id}`, { session_id: id, sgc_id: i + 1, status, ...(status === "stopped" ? { exit_code: 0 } : {}) })),
    );
  }
  await waitFor(
    async () => Number((await f.world.sql`SELECT count(*) AS n FROM sessions WHERE status = 'stopped'`)[0]!.n) === SESSIONS,
    45_000,
    "every session stopped",
  );
  const bad = await f.world.sql`SELECT count(*) AS n FROM sessions WHERE started_at IS NULL OR ended_at IS NULL OR exit_code IS DISTINCT FROM 0`;
  expect(Number(bad[0]!.n)).toBe(0);
  await waitFor(() => f.peer.events("manman.session.stopped").length === SESSIONS, 20_000, "every stop announced");
  expect(f.peer.events("manman.session.running")).toHaveLength(SESSIONS);
  expect(f.peer.deadLettered).toHaveLength(0);
  // Everything confirmed leaves the outbox.
  await waitFor(async () => Number((await f.world.sql`SELECT count(*) AS n FROM processor_outbox`)[0]!.n) === 0, 10_000, "outbox empty");
});
