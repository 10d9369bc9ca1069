/**
 * The archive writer's rarer paths, on a real database and directory store
 * (src/log-pipeline/archive-writer.ts): a key already holding another
 * object is left alone and the next part is claimed; a row taken away
 * while its object is written (another replica's crash-leftover sweep)
 * makes the writer write the lines again under a new part; lines whose
 * channel closed mid-write are given back with the row and object removed;
 * a failing store is retried until it works, readiness reporting it.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { migrate } from "../src/db/migrate.ts";
import { createPool, type Sql } from "../src/db/pool.ts";
import { silentLogger } from "../src/log.ts";
import { ArchiveCounters } from "../src/log-pipeline/archive-metrics.ts";
import { ArchiveSessions } from "../src/log-pipeline/archive-sessions.ts";
import { ArchiveWriter, type Held } from "../src/log-pipeline/archive-writer.ts";
import { formatLines } from "../src/logs/archive/format.ts";
import { objectKey } from "../src/logs/archive/keys.ts";
import { PendingWindows } from "../src/logs/archive/window.ts";
import { DirectoryStore } from "../src/storage/directory.ts";
import { StorageError, type ObjectStore } from "../src/storage/store.ts";
import { createManManV2Database, insertDeployment, insertSession } from "./support/manmanv2-schema.ts";
import type { TestDatabase } from "./support/services.ts";

let db: TestDatabase;
let sql: Sql;
let plain: postgres.Sql;
let dir: string;
let store: DirectoryStore;
let sgc: number;

beforeAll(async () => {
  db = await createManManV2Database("archwriter");
  sql = createPool({ url: db.url, max: 4, statementTimeoutMs: 10_000 });
  await migrate(sql);
  plain = postgres(db.url, { max: 2, onnotice: () => {} });
  dir = await mkdtemp(join(tmpdir(), "archive-writer-"));
  store = new DirectoryStore(dir);
  sgc = (await insertDeployment(plain)).sgcId;
});
afterAll(async () => {
  await plain?.end({ timeout: 1 });
  await sql?.end({ timeout: 1 });
  await Promise.all([db?.remove(), rm(dir, { recursive: true, force: true })]);
});

const MINUTE = Date.parse("2026-01-02T15:04:00Z");
const channel = () => ({ closed: false, basicAck: async () => {}, basicReject: async () => {}, basicNack: async () => {} });

/** A taken window of `n` lines of a new session. */
async function window(n: number, ch = channel()) {
  const session = await insertSession(plain, { sgcId: sgc, status: "running" });
  const w = new PendingWindows<Held>();
  for (let i = 0; i < n; i++) w.add({ sessionId: session, timestamp: MINUTE + i, source: "stdout", message: `m${i}` }, { deliveryTag: i + 1, channel: ch, redelivered: false });
  return { session, ch, taken: w.take(w.all()[0]!)! };
}

function writer(s: ObjectStore = store) {
  const counters = new ArchiveCounters();
  const w = new ArchiveWriter({ sql, store: s, sessions: new ArchiveSessions(sql, (st) => st === "stopped"), counters, logger: silentLogger, signal: new AbortController().signal, draining: () => false });
  return { w, counters };
}

/** The directory store with another put. */
function withPut(o: { put: ObjectStore["put"] }): ObjectStore {
  return {
    kind: store.kind,
    location: store.location,
    put: o.put,
    get: (k, s) => store.get(k, s),
    delete: (k, s) => store.delete(k, s),
    filePath: (k) => store.filePath(k),
    keyOf: (p) => store.keyOf(p),
    check: (s) => store.check(s),
  };
}

const rows = async (session: number) =>
  (await plain`SELECT file_path, state, line_count FROM log_references WHERE session_id = ${session} ORDER BY log_id`).map((r) => ({ path: (r.file_path as string).slice(`file://${dir}/`.length), state: r.state, lines: r.line_count }));
const text = async (key: string) => {
  const b = await store.get(key);
  return b ? new TextDecoder().decode(Bun.gunzipSync(b as Uint8Array<ArrayBuffer>)) : null;
};

test("a key that already holds another object is never overwritten: the next part is claimed", async () => {
  const { session, taken } = await window(3);
  const foreign = Bun.gzipSync(new TextEncoder().encode("[2026-01-02T15:04:00Z] [host] upstream's\n"));
  await store.put(objectKey(sgc, session, MINUTE, 0), foreign);
  expect(await writer().w.write(taken)).toEqual({ kind: "archived", part: 1 });
  expect(await rows(session)).toEqual([{ path: objectKey(sgc, session, MINUTE, 1), state: "complete", lines: 3 }]);
  expect(await store.get(objectKey(sgc, session, MINUTE, 0))).toEqual(foreign);
  expect(await text(objectKey(sgc, session, MINUTE, 1))).toBe(formatLines(taken.lines));
});

test("a row taken away while its object is written: the lines are written again under a new part, the orphan removed", async () => {
  const { session, taken } = await window(4);
  let first = true;
  const sweptMidPut: ObjectStore = withPut({
    put: async (key: string, bytes: Uint8Array, signal?: AbortSignal) => {
      await store.put(key, bytes, signal);
      if (first) {
        first = false;
        await plain`UPDATE log_references SET state = 'deleting' WHERE session_id = ${session}`;
      }
    },
  });
  expect(await writer(sweptMidPut).w.write(taken)).toEqual({ kind: "archived", part: 1 });
  const all = await rows(session);
  expect(all).toEqual([
    { path: objectKey(sgc, session, MINUTE, 0), state: "deleting", lines: 4 },
    { path: objectKey(sgc, session, MINUTE, 1), state: "complete", lines: 4 },
  ]);
  expect(await store.get(objectKey(sgc, session, MINUTE, 0))).toBeNull();
  expect(await text(objectKey(sgc, session, MINUTE, 1))).toBe(formatLines(taken.lines));
});

test("the lines' channel closes while the store fails: nothing is written, the pending row is removed, the lines are given back", async () => {
  const { session, ch, taken } = await window(2);
  let calls = 0;
  const failing: ObjectStore = withPut({
    put: async () => {
      calls++;
      ch.closed = true; // the broker has requeued them
      throw new StorageError("S3 PUT: ECONNREFUSED");
    },
  });
  const { w } = writer(failing);
  expect(await w.write(taken)).toEqual({ kind: "given_back", lines: [], handles: [] });
  expect(calls).toBe(1);
  expect(await rows(session)).toEqual([]);
  expect(w.health.problem()).toBeNull();
});

test("a store that fails a few times is retried with the lines held; readiness reports it meanwhile", async () => {
  const { session, taken } = await window(5);
  let calls = 0;
  let problem: string | null = null;
  const { w, counters } = writer(
    withPut({
      put: async (key: string, bytes: Uint8Array, signal?: AbortSignal) => {
        if (++calls <= 3) {
          if (calls === 3) problem = w.health.problem();
          throw new StorageError("S3 PUT: HTTP 503 SlowDown");
        }
        await store.put(key, bytes, signal);
      },
    }),
  );
  expect(await w.write(taken)).toEqual({ kind: "archived", part: 0 });
  expect(problem).toMatch(/^1 archive write\(s\) failing for \d+ s \(put: S3 PUT: HTTP 503 SlowDown\)$/);
  expect(w.health.problem()).toBeNull();
  expect(counters.failures.put).toBe(3);
  expect(await rows(session)).toEqual([{ path: objectKey(sgc, session, MINUTE, 0), state: "complete", lines: 5 }]);
});
