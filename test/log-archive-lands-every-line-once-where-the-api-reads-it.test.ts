/**
 * The archive as the ManManV2 API sees it (CONTRACT §6, UPSTREAM.md §5), on
 * a database shaped as a ManManV2 deployment, once with the directory store
 * and once with S3 (s3rver): lines of several sessions across minute
 * boundaries land in one object per session and minute with the right key
 * and row; the API's own queries give back exactly the lines published,
 * each once; late lines make a new part; a session's end writes its
 * minutes at once.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { formatLines, type ArchivedLine } from "../src/logs/archive/format.ts";
import { apiHistogram, apiHistoricalLines, completeLines, keys, objectText, publishLines, rowsOf, type ObjectSource } from "./support/archive.ts";
import { createManManV2Database, insertDeployment, insertSession } from "./support/manmanv2-schema.ts";
import { BrokerPeer, startProcessor, waitFor, type RunningProcessor } from "./support/processor.ts";
import { readyz } from "./support/faults.ts";
import { useS3Server } from "./support/s3.ts";
import { createVhost, type TestDatabase, type TestVhost } from "./support/services.ts";

const s3 = useS3Server("archive");
type Line = ArchivedLine & { sessionId: number };

const pad = (n: number, w = 2) => String(n).padStart(w, "0");
/** Upstream's key, spelled out here rather than taken from the code under test. */
function expectedKey(sgc: number, session: number, minuteMs: number, part = 0): string {
  const d = new Date(minuteMs);
  const hour = `${d.getUTCFullYear()}/${pad(d.getUTCMonth() + 1)}/${pad(d.getUTCDate())}/${pad(d.getUTCHours())}`;
  return `logs/sgc-${sgc}/session-${session}/${hour}/${pad(d.getUTCMinutes())}${part ? `.${part}` : ""}.log.gz`;
}
const minuteOf = (ms: number) => Math.floor(ms / 60_000) * 60_000;

describe.each(["directory", "s3"] as const)("the archive in a %s", (kind) => {
  let vhost: TestVhost;
  let db: TestDatabase;
  let sql: postgres.Sql;
  let dir: string;
  let peer: BrokerPeer;
  let processor: RunningProcessor;
  let source: ObjectSource;
  let prefix: string;
  const started = Date.now();

  beforeAll(async () => {
    [vhost, db] = await Promise.all([createVhost("archive"), createManManV2Database("archive")]);
    sql = postgres(db.url, { max: 4, onnotice: () => {} });
    dir = await mkdtemp(join(tmpdir(), "archive-"));
    const env: Record<string, string> = { LOG_LEVEL: "info", LOG_ARCHIVE_DIR: dir, LOG_ARCHIVE_GRACE_SECONDS: "3600" };
    if (kind === "s3") {
      const o = s3.storeOptions();
      Object.assign(env, { S3_BUCKET: o.bucket, S3_ENDPOINT: o.endpoint!, S3_REGION: o.region!, S3_ACCESS_KEY: o.accessKeyId, S3_SECRET_KEY: o.secretAccessKey });
      source = { s3: { server: s3.server, bucket: s3.bucket } };
      prefix = `s3://${s3.bucket}/`;
    } else {
      source = {};
      prefix = `file://${dir}/`;
    }
    processor = await startProcessor(vhost, db, env);
    peer = await BrokerPeer.connect(vhost.url);
  });
  afterAll(async () => {
    await processor?.stop();
    await peer?.close();
    await sql?.end({ timeout: 1 });
    await Promise.all([vhost?.remove(), db?.remove(), rm(dir, { recursive: true, force: true })]);
  });

  // Three hours ago: past the hour of grace this file sets, so every minute is due at once.
  const base = minuteOf(Date.now() - 3 * 3_600_000);
  const sessions: { id: number; sgc: number; source: (i: number) => string }[] = [];
  const published = new Map<number, Line[]>();

  test("lines of three sessions over three minutes: one object and one row per session and minute, as upstream lays them out", async () => {
    const a = await insertDeployment(sql);
    const b = await insertDeployment(sql);
    const sources = [(_: number) => "stdout", (i: number) => (i % 2 ? "stderr" : "stdout"), (_: number) => "host"];
    for (const [n, sgc] of [a.sgcId, a.sgcId, b.sgcId].entries()) {
      sessions.push({ id: await insertSession(sql, { sgcId: sgc, status: "running" }), sgc, source: sources[n]! });
    }
    const all: Line[] = [];
    for (const s of sessions) {
      // 1,500 lines 97 ms apart from second 50 of the first minute: ~145 s, two minute boundaries.
      const lines = Array.from({ length: 1500 }, (_, i): Line => ({
        sessionId: s.id,
        timestamp: base + 50_000 + i * 97,
        source: s.source(i),
        message: i % 250 === 0 ? `line ${i}: Exception\n  at C:\\new\\run "é" \\n` : `line ${i} of session ${s.id}`,
      }));
      published.set(s.id, lines);
      all.push(...lines);
    }
    await publishLines(peer, all);
    const ids = sessions.map((s) => s.id);
    await waitFor(async () => (await completeLines(sql, ids)) === all.length, 30_000, "every line archived");

    for (const s of sessions) {
      const rows = await rowsOf(sql, s.id);
      const lines = published.get(s.id)!;
      const minutes = [...new Set(lines.map((l) => minuteOf(l.timestamp)))].sort((x, y) => x - y);
      expect(rows.map((r) => r.minute_ms).sort((x, y) => x - y)).toEqual(minutes);
      for (const r of rows) {
        const mine = lines.filter((l) => minuteOf(l.timestamp) === r.minute_ms);
        const mixed = new Set(mine.map((l) => l.source)).size > 1;
        expect(r).toMatchObject({
          session_id: s.id,
          sgc_id: s.sgc,
          file_path: prefix + expectedKey(s.sgc, s.id, r.minute_ms),
          start_ms: mine[0]!.timestamp,
          end_ms: mine.at(-1)!.timestamp,
          line_count: mine.length,
          source: mixed ? "host" : mine[0]!.source,
          state: "complete",
        });
        // created_at is UTC, like every other column.
        expect(r.created_ms).toBeGreaterThan(started - 60_000);
        expect(r.created_ms).toBeLessThan(Date.now() + 60_000);
        // The object is exactly the lines of that minute, in CONTRACT §6's format.
        expect(await objectText(r.file_path, source)).toBe(formatLines(mine));
      }
    }
  });

  test("the API's GetHistoricalLogs query and objects return every line published, each once; its histogram counts them", async () => {
    for (const s of sessions) {
      const lines = published.get(s.id)!;
      expect(keys(await apiHistoricalLines(sql, s.id, source))).toEqual(keys(lines));
      // A window of the middle minute only: rows overlapping it, nothing else.
      const mid = minuteOf(lines[0]!.timestamp) + 60_000;
      const middle = await apiHistoricalLines(sql, s.id, source, { startS: mid / 1000 + 10, endS: mid / 1000 + 20 });
      expect(keys(middle)).toEqual(keys(lines.filter((l) => minuteOf(l.timestamp) === mid)));

      const histogram = await apiHistogram(sql, s.id, 60);
      const expected = new Map<string, number>();
      for (const minute of new Set(lines.map((l) => minuteOf(l.timestamp)))) {
        const group = lines.filter((l) => minuteOf(l.timestamp) === minute);
        const src = new Set(group.map((l) => l.source)).size > 1 ? "host" : group[0]!.source;
        expected.set(`${minute / 1000}/${src}`, group.length);
      }
      expect(histogram).toEqual(expected);
    }
  });

  test("late lines for a minute already archived go to a new part; the first object is untouched and no line is returned twice", async () => {
    const s = sessions[0]!;
    const minute = base + 60_000;
    const before = await rowsOf(sql, s.id);
    const firstObject = await objectText(before.find((r) => r.minute_ms === minute)!.file_path, source);
    const late: Line[] = Array.from({ length: 5 }, (_, i) => ({ sessionId: s.id, timestamp: minute + 30_000 + i, source: "stdout", message: `late ${i}` }));
    await publishLines(peer, late);
    await waitFor(async () => (await rowsOf(sql, s.id)).filter((r) => r.state === "complete").length === before.length + 1, 30_000, "a new part");
    const part = (await rowsOf(sql, s.id)).at(-1)!;
    expect(part).toMatchObject({ file_path: prefix + expectedKey(s.sgc, s.id, minute, 1), minute_ms: minute, line_count: 5, start_ms: minute + 30_000, end_ms: minute + 30_004 });
    expect(await objectText(part.file_path, source)).toBe(formatLines(late));
    expect(await objectText(before.find((r) => r.minute_ms === minute)!.file_path, source)).toBe(firstObject);
    published.get(s.id)!.push(...late);
    expect(keys(await apiHistoricalLines(sql, s.id, source))).toEqual(keys(published.get(s.id)!));
  });

  test("a session that ends has its current minute written at once, not after the grace", async () => {
    const { sgcId } = await insertDeployment(sql);
    const id = await insertSession(sql, { sgcId, status: "running" });
    const now = Date.now();
    const lines: Line[] = Array.from({ length: 20 }, (_, i) => ({ sessionId: id, timestamp: now + i, source: "stdout", message: `final ${i}` }));
    await publishLines(peer, lines);
    await Bun.sleep(2_500);
    expect(await rowsOf(sql, id)).toEqual([]); // an hour of grace: nothing written yet
    await sql`UPDATE sessions SET status = 'crashed', ended_at = now() WHERE session_id = ${id}`;
    const ended = performance.now();
    await waitFor(async () => (await completeLines(sql, [id])) === 20, 10_000, "the ended session's lines");
    const tookMs = performance.now() - ended;
    console.log(`${kind}: session end → archived in ${Math.round(tookMs)} ms`);
    expect(tookMs).toBeLessThan(5_000);
    expect(keys(await apiHistoricalLines(sql, id, source))).toEqual(keys(lines));
  });

  test("readiness and metrics report the archive", async () => {
    const r = await readyz(processor.url("/readyz"));
    expect(r.body.log_archive).toBe("up");
    const total = [...published.values()].reduce((n, l) => n + l.length, 0) + 20;
    const metrics = await (await fetch(processor.url("/metrics"))).text();
    await waitFor(async () => (await (await fetch(processor.url("/metrics"))).text()).includes(`manman_log_archive_lines_total ${total}`), 5_000, `lines_total ${total}: ${metrics}`);
    expect(metrics).toContain("manman_log_archive_duplicate_lines_total 0");
    expect(metrics).toContain('manman_log_archive_lines_dropped_total{reason="malformed"} 0');
  });
});
