/**
 * Two replicas on one broker, database and archive directory share the
 * archive queue: each archives the lines it receives, both hold lines of
 * the same minutes, and their parts never collide. Every line ends up in
 * the archive once (a copy would only come from a replica that stored a
 * line and lost its channel before the ack: counted, and here none).
 * Then one replica stops gracefully with lines held: it writes them first.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { apiLinesOf, archiveQueueReady, completeLines, declareArchiveQueueFirst, keys, makeLines, publishLines } from "./support/archive.ts";
import { createManManV2Database, insertDeployment, insertSession } from "./support/manmanv2-schema.ts";
import { BrokerPeer, startProcessor, waitFor, type RunningProcessor } from "./support/processor.ts";
import { createVhost, type TestDatabase, type TestVhost } from "./support/services.ts";

let vhost: TestVhost;
let db: TestDatabase;
let sql: postgres.Sql;
let dir: string;
let peer: BrokerPeer;
let replicas: RunningProcessor[] = [];

beforeAll(async () => {
  [vhost, db] = await Promise.all([createVhost("archrep"), createManManV2Database("archrep")]);
  sql = postgres(db.url, { max: 4, onnotice: () => {} });
  dir = await mkdtemp(join(tmpdir(), "archive-replicas-"));
  peer = await BrokerPeer.connect(vhost.url);
  await declareArchiveQueueFirst(vhost.url);
  // A small window each (prefetch 500), so both take turns on every minute.
  const env = { LOG_LEVEL: "info", LOG_ARCHIVE_DIR: dir, LOG_ARCHIVE_MAX_PENDING_LINES: "500" };
  replicas = [await startProcessor(vhost, db, env), await startProcessor(vhost, db, env)];
});
afterAll(async () => {
  for (const r of replicas) await r.stop().catch(() => {});
  await peer?.close();
  await sql?.end({ timeout: 1 });
  await Promise.all([vhost?.remove(), db?.remove(), rm(dir, { recursive: true, force: true })]);
});

const archivedBy = (r: RunningProcessor) => r.service.metrics.get("manman_log_archive_lines_total");

test("two replicas: every line archived once, the minutes split into parts that never share a key", async () => {
  const { sgcId } = await insertDeployment(sql);
  const ids: number[] = [];
  for (let i = 0; i < 3; i++) ids.push(await insertSession(sql, { sgcId, status: "running" }));
  const base = Math.floor((Date.now() - 3 * 3_600_000) / 60_000) * 60_000;
  const lines = makeLines(ids, 6000, base, 25); // 18,000 lines over ~2.5 minutes
  await publishLines(peer, lines);
  await waitFor(async () => (await completeLines(sql, ids)) >= lines.length, 60_000, "every line archived");

  const archived = await apiLinesOf(sql, ids);
  expect(keys(archived)).toEqual(keys(lines));
  const paths = (await sql`SELECT file_path FROM log_references WHERE session_id = ANY(${ids})`).map((r) => r.file_path as string);
  expect(new Set(paths).size).toBe(paths.length);
  const perMinute = await sql`SELECT session_id, minute_timestamp, count(*)::int AS parts FROM log_references WHERE session_id = ANY(${ids}) GROUP BY 1, 2`;
  await waitFor(() => archivedBy(replicas[0]!) + archivedBy(replicas[1]!) === lines.length, 5_000, "both replicas' figures");
  console.log(`replica lines: ${archivedBy(replicas[0]!)} + ${archivedBy(replicas[1]!)}; ${paths.length} objects for ${perMinute.length} session-minutes`);
  expect(archivedBy(replicas[0]!)).toBeGreaterThan(0);
  expect(archivedBy(replicas[1]!)).toBeGreaterThan(0);
  expect(Math.max(...perMinute.map((m) => m.parts as number))).toBeGreaterThan(1);
  for (const r of replicas) expect(r.service.metrics.get("manman_log_archive_duplicate_lines_total")).toBe(0);
}, 120_000);

test("a replica stopped gracefully writes the lines it holds before it exits; nothing is left for the broker to redeliver", async () => {
  const { sgcId } = await insertDeployment(sql);
  const id = await insertSession(sql, { sgcId, status: "running" });
  // The current minute (not due for 15 s or more), fewer than the early cut (half of 500).
  const lines = makeLines([id], 200, Date.now(), 1, "held");
  const [first, second] = replicas as [RunningProcessor, RunningProcessor];
  await second.stop(); // only the first consumes now
  await publishLines(peer, lines);
  await waitFor(() => first.service.metrics.get("manman_log_archive_pending_lines") === lines.length, 10_000, "lines held");
  expect(await completeLines(sql, [id])).toBe(0);
  await first.stop();
  expect(await completeLines(sql, [id])).toBe(lines.length);
  expect(first.logs.some((l) => l.msg === "writing held log lines to the archive before stopping")).toBe(true);
  expect(first.service.metrics.get("manman_log_archive_pending_lines")).toBe(0);
  expect(keys(await apiLinesOf(sql, [id]))).toEqual(keys(lines));
  // The acks reached the broker before the connection closed: nothing to redeliver.
  expect(await archiveQueueReady(vhost.url)).toBe(0);
}, 60_000);
