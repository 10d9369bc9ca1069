/**
 * LogHistory against a real database (standalone migrations) and a
 * DirectoryStore in a temporary directory, rows and objects written here in
 * the formats of src/logs/archive/: paging forwards and backwards over
 * several objects (late parts, 120 lines in one millisecond, an upstream
 * object rewritten with APPENDED and named by two rows), jumps by time,
 * the histogram, tokens on both ports, bad arguments, unreadable objects
 * skipped, and a storage outage answered as UNAVAILABLE.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { Code, ConnectError, createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { LogHistory, ReadDirection, type HistoryLine } from "../src/gen/manman/processor/v1/log_history_pb.ts";
import { createPool, type Sql } from "../src/db/pool.ts";
import { migrate } from "../src/db/migrate.ts";
import { createHttpApp } from "../src/http/app.ts";
import { silentLogger } from "../src/log.ts";
import { Metrics } from "../src/metrics.ts";
import { createAccessCheck } from "../src/rpc/access.ts";
import { startGrpcServer } from "../src/rpc/grpc-server.ts";
import { currentRuntime } from "../src/runtime/index.ts";
import { mountLogHistory } from "../src/log-pipeline/log-history.ts";
import { formatLines, type ArchivedLine } from "../src/logs/archive/format.ts";
import { objectKey } from "../src/logs/archive/keys.ts";
import { DirectoryStore } from "../src/storage/directory.ts";
import { StorageError, type ObjectStore } from "../src/storage/store.ts";
import { createDatabase, type TestDatabase } from "./support/services.ts";

const TOKEN = "history-token";
const T0 = Date.UTC(2026, 10, 25, 14, 0, 0); // a minute start
let db: TestDatabase;
let sql: Sql;
let dir: string;
let store: DirectoryStore;
let storageDown = false;
const metrics = new Metrics();
const stop = new AbortController();
let httpUrl: string;
let grpcUrl: string;
let sessionId: number;
/** Every line of `sessionId` in the order the service must return them. */
const expected: ArchivedLine[] = [];

beforeAll(async () => {
  db = await createDatabase("loghistory");
  sql = createPool({ url: db.url, max: 4, statementTimeoutMs: 5000 });
  await migrate(sql);
  dir = await mkdtemp(join(tmpdir(), "log-history-"));
  store = new DirectoryStore(dir);
  // The real store, with a switch that makes every read fail as S3 would when down.
  const flaky: ObjectStore = {
    kind: store.kind,
    location: store.location,
    put: (key, bytes, signal) => store.put(key, bytes, signal),
    get: (key, signal) => (storageDown ? Promise.reject(new StorageError("GET failed: connect ECONNREFUSED 127.0.0.1:9", { code: "ECONNREFUSED" })) : store.get(key, signal)),
    delete: (key, signal) => store.delete(key, signal),
    filePath: (key) => store.filePath(key),
    keyOf: (filePath) => store.keyOf(filePath),
    check: (signal) => store.check(signal),
  };
  const app = createHttpApp([]);
  const access = createAccessCheck([TOKEN]);
  const history = mountLogHistory(app, { sql, store: flaky, access, logger: silentLogger, metrics, signal: stop.signal });
  const served = await currentRuntime().serve({ port: 0, hostname: "127.0.0.1", fetch: (req, ctx) => app.fetch(req, ctx), signal: stop.signal });
  httpUrl = `http://127.0.0.1:${served.port}`;
  const grpc = await startGrpcServer({ port: 0, hostname: "127.0.0.1", routes: history.routes, logger: silentLogger, signal: stop.signal, access, streamsPerClient: 500 });
  grpcUrl = `http://127.0.0.1:${grpc.port}`;
  await writeArchive();
});
afterAll(async () => {
  stop.abort();
  await sql?.end({ timeout: 1 });
  await db?.remove();
  if (dir) await rm(dir, { recursive: true, force: true });
});

type Protocol = "connect" | "grpc-web" | "grpc";
const PROTOCOLS: Protocol[] = ["connect", "grpc-web", "grpc"];
function client(protocol: Protocol, token: string | undefined = TOKEN): Client<typeof LogHistory> {
  const bearer: Interceptor = (next) => (req) => (req.header.set("authorization", `Bearer ${token}`), next(req));
  const interceptors = token ? [bearer] : [];
  if (protocol === "grpc") return createClient(LogHistory, createGrpcTransport({ baseUrl: grpcUrl, interceptors }));
  const t = protocol === "connect" ? createConnectTransport({ baseUrl: httpUrl, interceptors }) : createGrpcWebTransport({ baseUrl: httpUrl, interceptors });
  return createClient(LogHistory, t);
}

async function row(session: number, key: string | null, lines: ArchivedLine[], opts: { state?: string; filePath?: string; sgcId?: number } = {}): Promise<void> {
  const filePath = opts.filePath ?? store.filePath(key!);
  if (key) await store.put(key, gzipSync(formatLines(lines)));
  const ts = lines.map((l) => l.timestamp);
  const at = (ms: number) => new Date(ms).toISOString().replace("T", " ").replace("Z", "");
  await sql`
    INSERT INTO log_references (session_id, sgc_id, file_path, start_time, end_time, line_count, source, minute_timestamp, state)
    VALUES (${session}, ${opts.sgcId ?? 3}, ${filePath}, ${at(Math.min(...ts))}::timestamp, ${at(Math.max(...ts))}::timestamp,
            ${lines.length}, ${new Set(lines.map((l) => l.source)).size === 1 ? lines[0]!.source : "host"},
            ${at(Math.floor(ts[0]! / 60_000) * 60_000)}::timestamp, ${opts.state ?? "complete"})`;
}

async function writeArchive(): Promise<void> {
  const [s] = await sql<{ session_id: bigint }[]>`INSERT INTO sessions (sgc_id, status) VALUES (3, 'stopped') RETURNING session_id`;
  sessionId = Number(s!.session_id);
  const line = (ms: number, source: string, message: string): ArchivedLine => ({ timestamp: ms, source, message });
  const parts: ArchivedLine[][] = [];
  for (let m = 0; m < 4; m++) {
    const base = T0 + m * 60_000;
    const first: ArchivedLine[] = [];
    for (let i = 0; i < 30; i++) first.push(line(base + i * 1500, i % 5 === 0 ? "stderr" : "stdout", `minute ${m} line ${i}`));
    // A host flushes many lines stamped with one millisecond.
    for (let i = 0; i < 120; i++) first.push(line(base + 50_000, "stdout", `minute ${m} burst ${i}`));
    parts.push(first);
  }
  // Multi-line messages and a backslash survive the round trip.
  parts[1]!.push(line(T0 + 60_000 + 59_000, "stderr", "Traceback:\n  at C:\\Games\\srv\\n"));
  for (let m = 0; m < 4; m++) await row(sessionId, objectKey(3, sessionId, T0 + m * 60_000, 0), parts[m]!);
  // A late part of minute 1, written after minute 3: lines between minute 1's and in its burst's millisecond.
  const late = [line(T0 + 60_000 + 700, "host", "late: before line 1"), line(T0 + 60_000 + 50_000, "host", "late: in the burst's ms")];
  await row(sessionId, objectKey(3, sessionId, T0 + 60_000, 1), late);
  // Upstream's archiver: whole seconds, raw text, a rewrite with APPENDED, and a second row for the same object.
  const upstreamKey = objectKey(3, sessionId, T0 + 4 * 60_000, 0);
  const up1 = [line(T0 + 4 * 60_000 + 1000, "host", "upstream one"), line(T0 + 4 * 60_000 + 2000, "host", "upstream two")];
  const up2 = [line(T0 + 4 * 60_000 + 30_000, "host", "upstream appended")];
  const text = `[2026-11-25T14:04:01Z] [host] upstream one\n[2026-11-25T14:04:02Z] [host] upstream two\n\n--- APPENDED AT 2026-11-25T14:07:00Z ---\n[2026-11-25T14:04:30Z] [host] upstream appended\n`;
  await store.put(upstreamKey, gzipSync(text));
  await row(sessionId, null, up1, { filePath: store.filePath(upstreamKey) });
  await row(sessionId, null, up2, { filePath: store.filePath(upstreamKey) });
  // Not read: a pending row, a row whose object is missing, a row of another bucket.
  await row(sessionId, null, [line(T0 + 5 * 60_000, "stdout", "pending")], { state: "pending", filePath: store.filePath("logs/x/pending.log.gz") });
  await row(sessionId, null, [line(T0 + 5 * 60_000 + 1, "stdout", "missing")], { filePath: store.filePath("logs/x/missing.log.gz") });
  await row(sessionId, null, [line(T0 + 5 * 60_000 + 2, "stdout", "foreign")], { filePath: "s3://elsewhere/logs/x.log.gz" });
  // Another session's lines never leak in.
  const [other] = await sql<{ session_id: bigint }[]>`INSERT INTO sessions (sgc_id, status) VALUES (3, 'running') RETURNING session_id`;
  await row(Number(other!.session_id), objectKey(3, Number(other!.session_id), T0, 0), [line(T0 + 10, "stdout", "other session")]);

  // Lines by time; same-millisecond lines by object (log_id, i.e. written first) then place in it.
  const order = [...parts.flatMap((p, m) => p.map((l, i) => ({ l, obj: m, i }))), ...late.map((l, i) => ({ l, obj: 4, i })), ...[...up1, ...up2].map((l, i) => ({ l, obj: 5, i }))];
  order.sort((a, b) => a.l.timestamp - b.l.timestamp || a.obj - b.obj || a.i - b.i);
  expected.push(...order.map((o) => o.l));
}

const plain = (lines: HistoryLine[]) => lines.map((l) => ({ timestamp: Number(l.timestamp), source: l.source, message: l.message }));

async function pageThrough(c: Client<typeof LogHistory>, direction: ReadDirection, limit: number) {
  const pages: ArchivedLine[][] = [];
  let cursor: string | undefined;
  for (;;) {
    const res = await c.readSessionLogs({ sessionId: BigInt(sessionId), direction, limit, start: cursor ? { case: "cursor", value: cursor } : { case: undefined } });
    pages.push(plain(res.lines));
    cursor = res.nextCursor;
    if (!res.hasMore) return pages;
  }
}

describe.each(PROTOCOLS)("over %s", (protocol) => {
  test("forwards: every archived line once, oldest first, across objects, late parts and one-millisecond bursts", async () => {
    const pages = await pageThrough(client(protocol), ReadDirection.FORWARD, 37);
    expect(pages.flat()).toEqual(expected);
    expect(pages.slice(0, -1).every((p) => p.length === 37)).toBe(true);
  });

  test("backwards: the same lines, newest page first, each page oldest first", async () => {
    const pages = await pageThrough(client(protocol), ReadDirection.BACKWARD, 50);
    expect(pages.reverse().flat()).toEqual(expected);
  });
});

test("upstream's appended object is read once though two rows name it; its whole seconds are kept inside its rows", async () => {
  const upstream = expected.filter((l) => l.message.startsWith("upstream"));
  expect(upstream.map((l) => l.message)).toEqual(["upstream one", "upstream two", "upstream appended"]);
  const res = await client("connect").readSessionLogs({ sessionId: BigInt(sessionId), start: { case: "fromTimestamp", value: BigInt(T0 + 4 * 60_000) } });
  expect(plain(res.lines)).toEqual(upstream);
  expect(res.hasMore).toBe(false);
});

test("from_timestamp: FORWARD from the first line at that time, BACKWARD from the last before it; prev_cursor pages the other way", async () => {
  const c = client("grpc");
  const at = T0 + 60_000 + 50_000; // minute 1's burst
  const first = expected.findIndex((l) => l.timestamp === at);
  const fwd = await c.readSessionLogs({ sessionId: BigInt(sessionId), start: { case: "fromTimestamp", value: BigInt(at) }, limit: 10 });
  expect(plain(fwd.lines)).toEqual(expected.slice(first, first + 10));
  const back = await c.readSessionLogs({ sessionId: BigInt(sessionId), start: { case: "fromTimestamp", value: BigInt(at) }, direction: ReadDirection.BACKWARD, limit: 10 });
  expect(plain(back.lines)).toEqual(expected.slice(first - 10, first));
  // Up from the forward page, down from the backward one: adjacent, nothing twice.
  const up = await c.readSessionLogs({ sessionId: BigInt(sessionId), start: { case: "cursor", value: fwd.prevCursor }, direction: ReadDirection.BACKWARD, limit: 10 });
  expect(plain(up.lines)).toEqual(expected.slice(first - 10, first));
  const down = await c.readSessionLogs({ sessionId: BigInt(sessionId), start: { case: "cursor", value: back.prevCursor }, limit: 10 });
  expect(plain(down.lines)).toEqual(expected.slice(first, first + 10));
});

test("the default page is the newest 1000 lines backwards; past the end a page is empty and keeps its cursor", async () => {
  const c = client("connect");
  const newest = await c.readSessionLogs({ sessionId: BigInt(sessionId), direction: ReadDirection.BACKWARD });
  expect(plain(newest.lines)).toEqual(expected.slice(-Math.min(1000, expected.length)));
  const after = await c.readSessionLogs({ sessionId: BigInt(sessionId), start: { case: "cursor", value: newest.prevCursor } });
  expect(after.lines).toEqual([]);
  expect(after.hasMore).toBe(false);
  expect(after.nextCursor).toBe(newest.prevCursor);
  // The unreadable rows were skipped and counted.
  expect(metrics.get("manman_log_history_objects_skipped_total", { reason: "missing" })).toBeGreaterThan(0);
  expect(metrics.get("manman_log_history_objects_skipped_total", { reason: "foreign_path" })).toBeGreaterThan(0);
});

test("an unknown session is an empty page and an empty histogram", async () => {
  const c = client("connect");
  expect(await c.readSessionLogs({ sessionId: 987_654n })).toMatchObject({ lines: [], hasMore: false });
  const h = await c.sessionLogHistogram({ sessionId: 987_654n });
  expect(h).toMatchObject({ buckets: [], granularity: "1m" });
  expect(h.sessionStart).toBeUndefined();
});

test("histogram: lines per minute and source from the rows, dense, with upstream's bucket choice", async () => {
  const h = await client("grpc-web").sessionLogHistogram({ sessionId: BigInt(sessionId) });
  expect(h.granularity).toBe("1m");
  expect(Number(h.sessionStart)).toBe(T0);
  expect(Number(h.sessionEnd)).toBe(T0 + 5 * 60_000 + 2); // rows of unreadable objects still count as archived
  const total = (b: (typeof h.buckets)[number]) => Number(b.stdoutLines + b.stderrLines + b.hostLines);
  expect(h.buckets.map((b) => Number(b.timestamp))).toEqual([0, 1, 2, 3, 4, 5].map((m) => T0 + m * 60_000));
  // A row with one source counts there; mixed rows count as host (upstream writes host).
  expect(h.buckets.map(total)).toEqual([150, 153, 150, 150, 3, 2]);
  expect(Number(h.buckets[1]!.hostLines)).toBe(153);
  const wide = await client("connect").sessionLogHistogram({ sessionId: BigInt(sessionId), bucketSeconds: 300 });
  expect(wide).toMatchObject({ granularity: "5m", bucketSeconds: 300 });
  expect(wide.buckets.map(total)).toEqual([606, 2]);
  const part = await client("connect").sessionLogHistogram({ sessionId: BigInt(sessionId), startTime: BigInt(T0 + 60_000), endTime: BigInt(T0 + 2 * 60_000 + 59_999) });
  expect(part.buckets.map(total)).toEqual([153, 150]);
});

test("tokens are enforced on both ports", async () => {
  for (const protocol of PROTOCOLS) {
    for (const token of [undefined, "wrong"]) {
      const err = await client(protocol, token ?? "")
        .readSessionLogs({ sessionId: BigInt(sessionId) })
        .then(() => undefined, (e) => ConnectError.from(e));
      expect([protocol, err?.code]).toEqual([protocol, Code.Unauthenticated]);
      const h = await client(protocol, token ?? "").sessionLogHistogram({ sessionId: BigInt(sessionId) }).catch((e) => ConnectError.from(e));
      expect([protocol, (h as ConnectError).code]).toEqual([protocol, Code.Unauthenticated]);
    }
  }
});

test("a bad cursor, a negative limit or session id, a reversed range are INVALID_ARGUMENT; a huge limit is capped", async () => {
  const c = client("grpc");
  const code = (p: Promise<unknown>) => p.then(() => "ok", (e) => ConnectError.from(e).code);
  expect(await code(c.readSessionLogs({ sessionId: BigInt(sessionId), start: { case: "cursor", value: "not-a-cursor" } }))).toBe(Code.InvalidArgument);
  expect(await code(c.readSessionLogs({ sessionId: BigInt(sessionId), start: { case: "cursor", value: btoa("v1.1.2") } }))).toBe(Code.InvalidArgument);
  expect(await code(c.readSessionLogs({ sessionId: BigInt(sessionId), limit: -1 }))).toBe(Code.InvalidArgument);
  expect(await code(c.readSessionLogs({ sessionId: 0n }))).toBe(Code.InvalidArgument);
  expect(await code(c.sessionLogHistogram({ sessionId: BigInt(sessionId), startTime: 10n, endTime: 5n }))).toBe(Code.InvalidArgument);
  const all = await c.readSessionLogs({ sessionId: BigInt(sessionId), limit: 1_000_000 });
  expect(all.lines.length).toBe(expected.length); // under the 10,000 cap
});

test("storage down: UNAVAILABLE with the reason; back up: pages again", async () => {
  storageDown = true;
  try {
    const err = await client("connect")
      .readSessionLogs({ sessionId: BigInt(sessionId) })
      .then(() => undefined, (e) => ConnectError.from(e));
    expect(err?.code).toBe(Code.Unavailable);
    expect(err?.rawMessage).toContain("storage did not answer");
    expect(err?.rawMessage).toContain("ECONNREFUSED");
    // The histogram needs no object: it still answers.
    expect((await client("connect").sessionLogHistogram({ sessionId: BigInt(sessionId) })).buckets.length).toBe(6);
  } finally {
    storageDown = false;
  }
  expect((await client("connect").readSessionLogs({ sessionId: BigInt(sessionId), limit: 5 })).lines.length).toBe(5);
});
