/**
 * What the archive does with lines it cannot archive: undecodable ones are
 * acked at once, counted and logged (rate-limited) and never hold up good
 * lines; lines of a session with no row are held and looked up again for
 * 30 s (a row inserted meanwhile gets them), then acked, counted and logged.
 * The queue is left empty either way.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { UNKNOWN_SESSION_WAIT_MS } from "../src/logs/archive/sessions.ts";
import { apiLinesOf, archiveQueueReady, completeLines, declareArchiveQueueFirst, keys, makeLines, publishLines } from "./support/archive.ts";
import { createManManV2Database, insertDeployment, insertSession } from "./support/manmanv2-schema.ts";
import { BrokerPeer, startProcessor, waitFor, type RunningProcessor } from "./support/processor.ts";
import { createVhost, type TestDatabase, type TestVhost } from "./support/services.ts";

let vhost: TestVhost;
let db: TestDatabase;
let sql: postgres.Sql;
let dir: string;
let peer: BrokerPeer;
let processor: RunningProcessor;

beforeAll(async () => {
  [vhost, db] = await Promise.all([createVhost("archbad"), createManManV2Database("archbad")]);
  sql = postgres(db.url, { max: 4, onnotice: () => {} });
  dir = await mkdtemp(join(tmpdir(), "archive-bad-"));
  peer = await BrokerPeer.connect(vhost.url);
  await declareArchiveQueueFirst(vhost.url);
  processor = await startProcessor(vhost, db, { LOG_LEVEL: "info", LOG_ARCHIVE_DIR: dir });
});
afterAll(async () => {
  await processor?.stop();
  await peer?.close();
  await sql?.end({ timeout: 1 });
  await Promise.all([vhost?.remove(), db?.remove(), rm(dir, { recursive: true, force: true })]);
});

const metric = (name: string, labels: Record<string, string> = {}) => processor.service.metrics.get(name, labels);

test("undecodable lines are acked and counted at once; lines of a missing session wait 30 s for its row, then are dropped; good lines pass", async () => {
  const { sgcId } = await insertDeployment(sql);
  const good = await insertSession(sql, { sgcId, status: "running" });
  const late = 900_001; // its row is inserted a few seconds after its lines
  const missing = 900_002; // never has a row
  const base = Math.floor((Date.now() - 3 * 3_600_000) / 60_000) * 60_000;
  const goodLines = makeLines([good], 500, base, 10, "good");
  const lateLines = makeLines([late], 50, base, 10, "late");
  const missingLines = makeLines([missing], 70, base, 10, "missing");
  const bad = ["not json", JSON.stringify({ session_id: good, timestamp: base }), JSON.stringify({ session_id: "x", timestamp: base, source: "stdout", message: "m" }), JSON.stringify({ session_id: good, timestamp: base, source: "tty", message: "m" })];
  for (let i = 0; i < 40; i++) await peer.publish(`logs.session.${good}`, bad[i % bad.length]!);
  await publishLines(peer, [...missingLines, ...lateLines, ...goodLines]);

  await waitFor(async () => (await completeLines(sql, [good])) === goodLines.length, 15_000, "good lines archived");
  await waitFor(() => metric("manman_log_archive_lines_dropped_total", { reason: "malformed" }) === 40, 5_000, "malformed counted");
  expect(processor.logs.filter((l) => l.msg === "skipped a malformed log line" && l.component === "log_archive").length).toBeLessThanOrEqual(5);

  await Bun.sleep(3_000);
  await sql`INSERT INTO sessions (session_id, sgc_id, status) VALUES (${late}, ${sgcId}, 'running')`;
  await waitFor(async () => (await completeLines(sql, [late])) === lateLines.length, 15_000, "the late session's lines archived");

  const dropped = await waitFor(() => metric("manman_log_archive_lines_dropped_total", { reason: "unknown_session" }) === missingLines.length, UNKNOWN_SESSION_WAIT_MS + 15_000, "missing session's lines dropped");
  expect(dropped).toBe(true);
  const warned = processor.logs.filter((l) => l.msg === "dropped log lines of a session that does not exist");
  expect(warned.length).toBe(1);
  expect(warned[0]).toMatchObject({ session_id: missing, lines: missingLines.length });
  expect(keys(await apiLinesOf(sql, [good, late]))).toEqual(keys([...goodLines, ...lateLines]));
  expect(await archiveQueueReady(vhost.url)).toBe(0);
  await waitFor(() => metric("manman_log_archive_pending_lines") === 0, 5_000, "nothing held");
}, 90_000);
