/**
 * The archive's housekeeping (src/log-pipeline/archive-maintenance.ts) on a
 * ManManV2-shaped database and a directory store: rows a crash left
 * `pending` (or `deleting`) past the 5-minute lease are removed with their
 * objects, younger ones are left to their writer; with retention set, rows
 * whose lines began before the cut-off go with their objects, except an
 * object another row still names (upstream's shared objects) and rows of
 * another store; old part counters are pruned; and while another replica
 * holds the turn, nothing is touched.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { migrate } from "../src/db/migrate.ts";
import { createPool, type Sql } from "../src/db/pool.ts";
import { silentLogger } from "../src/log.ts";
import { LOCK_KEY, maintainArchive, type MaintenanceDeps } from "../src/log-pipeline/archive-maintenance.ts";
import { ArchiveCounters } from "../src/log-pipeline/archive-metrics.ts";
import { DirectoryStore } from "../src/storage/directory.ts";
import { createManManV2Database, insertDeployment, insertSession } from "./support/manmanv2-schema.ts";
import type { TestDatabase } from "./support/services.ts";

let db: TestDatabase;
let sql: Sql;
let dir: string;
let store: DirectoryStore;

beforeAll(async () => {
  db = await createManManV2Database("archmaint");
  sql = createPool({ url: db.url, max: 4, statementTimeoutMs: 10_000 });
  await migrate(sql);
  dir = await mkdtemp(join(tmpdir(), "archive-maint-"));
  store = new DirectoryStore(dir);
});
afterAll(async () => {
  await sql?.end({ timeout: 1 });
  await Promise.all([db?.remove(), rm(dir, { recursive: true, force: true })]);
});

const gz = (text: string) => Bun.gzipSync(new TextEncoder().encode(text));

/** A row (and, unless `object` is false, its object) with times relative to now. */
async function row(o: { session: number; sgc: number; key: string; state: string; createdAgo: string; startedAgo: string; object?: boolean; filePath?: string }): Promise<number> {
  if (o.object !== false) await store.put(o.key, gz(`[2026-01-01T00:00:00.000Z] [stdout] ${o.key}\n`)).catch(() => {});
  const [r] = await sql`
    INSERT INTO log_references (session_id, sgc_id, file_path, start_time, end_time, line_count, source, minute_timestamp, state, created_at)
    VALUES (${o.session}, ${o.sgc}, ${o.filePath ?? store.filePath(o.key)},
            (now() AT TIME ZONE 'UTC') - ${o.startedAgo}::interval, (now() AT TIME ZONE 'UTC') - ${o.startedAgo}::interval,
            1, 'stdout', date_trunc('minute', (now() AT TIME ZONE 'UTC') - ${o.startedAgo}::interval), ${o.state},
            (now() AT TIME ZONE 'UTC') - ${o.createdAgo}::interval)
    RETURNING log_id`;
  return Number(r!.log_id);
}

test("crash leftovers past the lease and rows past retention go with their objects; everything else stays; one replica at a time", async () => {
  const plain = postgres(db.url, { max: 1, onnotice: () => {} });
  const { sgcId: sgc } = await insertDeployment(plain);
  const session = await insertSession(plain, { sgcId: sgc, status: "running" });
  const k = (name: string) => `logs/sgc-${sgc}/session-${session}/2026/01/01/00/${name}.log.gz`;
  const ids = {
    stalePending: await row({ session, sgc, key: k("01"), state: "pending", createdAgo: "10 minutes", startedAgo: "10 minutes" }),
    freshPending: await row({ session, sgc, key: k("02"), state: "pending", createdAgo: "1 minute", startedAgo: "1 minute" }),
    staleDeleting: await row({ session, sgc, key: k("03"), state: "deleting", createdAgo: "10 minutes", startedAgo: "10 minutes" }),
    pendingNoObject: await row({ session, sgc, key: k("04"), state: "pending", createdAgo: "6 minutes", startedAgo: "6 minutes", object: false }),
    expired: await row({ session, sgc, key: k("05"), state: "complete", createdAgo: "40 days", startedAgo: "40 days" }),
    expiredNullState: await row({ session, sgc, key: k("06"), state: null as unknown as string, createdAgo: "40 days", startedAgo: "40 days" }),
    recent: await row({ session, sgc, key: k("07"), state: "complete", createdAgo: "1 day", startedAgo: "1 day" }),
    otherStore: await row({ session, sgc, key: k("08"), state: "complete", createdAgo: "40 days", startedAgo: "40 days", object: false, filePath: `s3://elsewhere/${k("08")}` }),
    sharedOld: await row({ session, sgc, key: k("09"), state: "complete", createdAgo: "40 days", startedAgo: "40 days" }),
    sharedRecent: await row({ session, sgc, key: k("09"), state: "complete", createdAgo: "1 day", startedAgo: "1 day" }),
  };
  await plain`INSERT INTO processor_log_archive_parts (session_id, minute_timestamp, parts) VALUES
              (${session}, (now() AT TIME ZONE 'UTC') - interval '2 days', 3), (${session}, (now() AT TIME ZONE 'UTC') - interval '1 hour', 2)`;
  const counters = new ArchiveCounters();
  const deps: MaintenanceDeps = { sql, databaseUrl: db.url, store, counters, logger: silentLogger, retentionDays: 30 };
  const remaining = async () => (await plain`SELECT log_id FROM log_references ORDER BY log_id`).map((r) => Number(r.log_id));
  const all = Object.values(ids).sort((a, b) => a - b);

  // Another replica's turn: nothing is touched.
  const other = postgres(db.url, { max: 1, onnotice: () => {} });
  await other`SELECT pg_advisory_lock(${LOCK_KEY.toString()}::bigint)`;
  await maintainArchive(deps, new AbortController().signal);
  expect(await remaining()).toEqual(all);
  await other.end();

  await maintainArchive(deps, new AbortController().signal);
  const gone = [ids.stalePending, ids.staleDeleting, ids.pendingNoObject, ids.expired, ids.expiredNullState, ids.sharedOld];
  expect(await remaining()).toEqual(all.filter((id) => !gone.includes(id)));
  for (const name of ["01", "03", "05", "06"]) expect(await store.get(k(name))).toBeNull();
  for (const name of ["02", "07", "09"]) expect(await store.get(k(name))).not.toBeNull();
  expect(counters.removed).toEqual({ crash_leftover: 3, retention: 3 });
  const parts = await plain`SELECT parts FROM processor_log_archive_parts WHERE session_id = ${session}`;
  expect(parts.map((p) => p.parts)).toEqual([2]);

  // Without retention, complete rows are kept however old.
  const kept = await row({ session, sgc, key: k("10"), state: "complete", createdAgo: "400 days", startedAgo: "400 days" });
  await maintainArchive({ ...deps, retentionDays: undefined }, new AbortController().signal);
  expect(await remaining()).toContain(kept);
  await plain.end();
});
