/**
 * kill -9 of the service (a real process) while it archives tens of
 * thousands of lines, then a restart: every line published is archived and
 * readable through the API's query; a line is archived twice only if the
 * killed process had stored it and not acked it yet, and the restarted one
 * counts each of those; the rows the kill left `pending` are invisible to
 * the API and removed (with their objects) by the next start once past
 * their lease.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { apiLinesOf, completeLines, declareArchiveQueueFirst, keys, makeLines, publishLines } from "./support/archive.ts";
import { createManManV2Database, insertDeployment, insertSession } from "./support/manmanv2-schema.ts";
import { BrokerPeer, startProcessor, waitFor } from "./support/processor.ts";
import { spawnService } from "./support/subprocess.ts";
import { createVhost, type TestDatabase, type TestVhost } from "./support/services.ts";

let vhost: TestVhost;
let db: TestDatabase;
let sql: postgres.Sql;
let dir: string;
let peer: BrokerPeer;

beforeAll(async () => {
  [vhost, db] = await Promise.all([createVhost("archkill"), createManManV2Database("archkill")]);
  sql = postgres(db.url, { max: 4, onnotice: () => {} });
  dir = await mkdtemp(join(tmpdir(), "archive-kill-"));
  peer = await BrokerPeer.connect(vhost.url);
  await declareArchiveQueueFirst(vhost.url);
});
afterAll(async () => {
  await peer?.close();
  await sql?.end({ timeout: 1 });
  await Promise.all([vhost?.remove(), db?.remove(), rm(dir, { recursive: true, force: true })]);
});

/** Every *.log.gz under the archive directory, as file_paths. */
async function objectsOnDisk(): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile() && e.name.endsWith(".log.gz")).map((e) => `file://${join(e.parentPath, e.name)}`).sort();
}

/**
 * Waits for a counter of the restarted service to reach `want`: the archive
 * hands its counts to /metrics once a tick (1 s). 20 s: many ticks on a busy
 * machine; the timeout says the last value read.
 */
async function metricReaches(read: () => number, want: number, what: string): Promise<void> {
  await waitFor(() => {
    const got = read();
    if (got !== want) throw new Error(`${what} = ${got}`);
    return true;
  }, 20_000, `${what} = ${want}`);
}

test("kill -9 mid-stream, then a restart: every line archived, copies counted, the kill's pending rows removed", async () => {
  const { sgcId } = await insertDeployment(sql);
  const ids: number[] = [];
  for (let i = 0; i < 4; i++) ids.push(await insertSession(sql, { sgcId, status: "running" }));
  // 40,000 lines over ~5 minutes of three hours ago (every minute due at once), queued before the process starts.
  const base = Math.floor((Date.now() - 3 * 3_600_000) / 60_000) * 60_000;
  const lines = makeLines(ids, 10_000, base, 30);
  await publishLines(peer, lines);

  const env = {
    RABBITMQ_URL: vhost.url, DATABASE_URL: db.url, HEALTH_CHECK_PORT: "0", GRPC_PORT: "0", LOG_LEVEL: "info",
    LOG_ARCHIVE_DIR: dir,
    // Small parts so the kill lands among many writes, with some in flight.
    LOG_ARCHIVE_MAX_PENDING_LINES: "2000",
  };
  const proc = spawnService(env);
  await proc.ready;
  await waitFor(async () => (await completeLines(sql, ids)) >= 10_000, 60_000, "10,000 lines archived");
  proc.child.kill("SIGKILL");
  await proc.exited;
  // A statement the process sent before it died still runs to its commit:
  // PostgreSQL notices the client is gone only when it answers. On a busy
  // server a claim (a new pending row) or a complete can so commit after the
  // exit and after the reads below: a pending row that missed the lease
  // shift (still pending after the restart's housekeeping), or one counted
  // pending that turns complete (one fewer removed than counted). A database
  // session ends after its last statement: once the killed process has none,
  // its rows are final.
  await waitFor(async () => (await sql`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = ${db.name} AND application_name LIKE 'manman-processor%'`)[0]!.n === 0, 60_000, "the killed process's database sessions gone");
  const atKill = await completeLines(sql, ids);
  const [pending] = await sql`SELECT count(*)::int AS n FROM log_references WHERE state = 'pending'`;
  console.log(`kill -9 with ${atKill}/${lines.length} lines archived, ${pending!.n} rows pending`);
  // Pending rows are never read by the API; they don't count.
  expect(atKill).toBeLessThan(lines.length);

  // The restart comes after the lease (5 min), as a crash-looping pod's
  // would: its first housekeeping removes the rows the kill left.
  await sql`UPDATE log_references SET created_at = created_at - interval '10 minutes' WHERE state = 'pending'`;
  const next = await startProcessor(vhost, db, { LOG_LEVEL: "info", LOG_ARCHIVE_DIR: dir });
  try {
    await waitFor(async () => new Set(keys(await apiLinesOf(sql, ids))).size === lines.length, 60_000, "every line archived");
    await waitFor(async () => (await sql`SELECT count(*)::int AS n FROM log_references WHERE state <> 'complete'`)[0]!.n === 0, 20_000, "no pending rows left");
    const archived = await apiLinesOf(sql, ids);
    const counts = new Map<string, number>();
    for (const k of keys(archived)) counts.set(k, (counts.get(k) ?? 0) + 1);
    expect([...counts.keys()].sort()).toEqual(keys(lines));
    expect(Math.max(...counts.values())).toBeLessThanOrEqual(2);
    const copies = archived.length - lines.length;
    // Every copy is one the killed process stored without acking; the
    // restarted one found each in a complete object and counted it.
    await metricReaches(() => next.service.metrics.get("manman_log_archive_duplicate_lines_total"), copies, "duplicates counted");
    console.log(`after restart: ${archived.length} lines in the archive for ${lines.length} published (${copies} archived twice, all counted)`);
    // Counted as the rows go, on /metrics at the next tick: wait for it as for the copies.
    await metricReaches(() => next.service.metrics.total("manman_log_archive_rows_removed_total"), pending!.n, "rows removed");
    // No object without a row, no row without an object.
    const paths = (await sql`SELECT file_path FROM log_references WHERE session_id = ANY(${ids})`).map((r) => r.file_path as string).sort();
    expect(await objectsOnDisk()).toEqual(paths);
  } catch (err) {
    // What both processes warned of, so a failure seen once on a busy machine can be read afterwards.
    for (const l of [...proc.lines, ...next.logs]) if (l.level === "warn" || l.level === "error" || l.stderr) console.log(JSON.stringify(l));
    throw err;
  } finally {
    await next.stop();
  }
}, 180_000);
