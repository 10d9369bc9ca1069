/**
 * `bun bench/events-sql.ts` — what the event statements cost PostgreSQL, by
 * group size, on the real schema (migrated as the service migrates it): the
 * backend's CPU (from /proc) per session move (moveSessions, one move a
 * statement or in groups) and per heartbeat (recordHeartbeats in groups).
 * One connection, statements one after another, so the figure is the
 * database's work alone (docs/performance.md). Not a test: it prints.
 */
import { readFileSync } from "node:fs";
import { createDatabase } from "../test/support/services.ts";
import { createPool } from "../src/db/pool.ts";
import { migrate } from "../src/db/migrate.ts";
import { moveSessions } from "../src/db/sessions.ts";
import { recordHeartbeats } from "../src/db/heartbeats.ts";
import { legalPredecessors, type SessionState } from "../src/events/session-machine.ts";
const db = await createDatabase("mmexp");
const sql = createPool({ url: db.url, max: 1, statementTimeoutMs: 60000 });
await migrate(sql);
const [{ pid }] = await sql`SELECT pg_backend_pid() AS pid`;
const cpu = () => { const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" "); return (Number(f[11]) + Number(f[12])) * 10; };
const N = 2000;
const mk = async () => (await sql<{ id: string }[]>`INSERT INTO sessions (sgc_id) SELECT g FROM generate_series(1, ${N}) g RETURNING session_id AS id`).map((r) => Number(r.id));
const move = (id: number, to: SessionState) => ({ sessionId: id, to, exitCode: to === "stopped" ? 0 : null, from: legalPredecessors(to), routingKey: `status.session.${id}`, tail: [] as string[] });
for (const G of [1, 10, 50, 200]) {
  const ids = await mk();
  const c0 = cpu(); const t0 = performance.now();
  for (const to of ["starting", "stopping", "stopped"] as const) {
    for (let i = 0; i < N; i += G) {
      const part = ids.slice(i, i + G);
      await moveSessions(sql, part.map((id) => move(id, to)));
    }
  }
  console.log(`group ${G}: ${(((cpu() - c0) * 1000) / (3 * N)).toFixed(1)} µs backend CPU a move, ${((performance.now() - t0) * 1000 / (3 * N)).toFixed(0)} µs wall a move`);
}
const servers = (await sql<{ id: string }[]>`INSERT INTO servers (name, status, last_seen) SELECT 'b' || g, 'online', now() FROM generate_series(1, 200) g RETURNING server_id AS id`).map((r) => Number(r.id));
for (const G of [5, 20, 200]) {
  const c0 = cpu();
  for (let k = 0; k < 6000 / G; k++) await recordHeartbeats(sql, servers.slice(0, G));
  console.log(`heartbeats, group ${G}: ${(((cpu() - c0) * 1000) / 6000).toFixed(1)} µs backend CPU a heartbeat`);
}
await sql.end(); await db.remove();
