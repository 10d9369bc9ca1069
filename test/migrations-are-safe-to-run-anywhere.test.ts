import { afterEach, expect, test } from "bun:test";
import { createPool, type Sql } from "../src/db/pool.ts";
import { migrate } from "../src/db/migrate.ts";
import { MIGRATIONS } from "../src/db/migrations.ts";
import { createDatabase, type TestDatabase } from "./support/services.ts";
import {
  backdateUpdatedAt, createManManV2Database, insertBackup, insertBackupConfig, insertDeployment, insertServer, insertSession,
  MANMANV2_SCHEMA_VERSION, MANMANV2_TABLES,
} from "./support/manmanv2-schema.ts";

let dbs: TestDatabase[] = [];
let pools: Sql[] = [];
afterEach(async () => {
  await Promise.all(pools.map((p) => p.end()));
  await Promise.all(dbs.map((d) => d.remove()));
  dbs = [];
  pools = [];
});

async function open(kind: "empty" | "manmanv2", max = 2): Promise<Sql> {
  const db = kind === "empty" ? await createDatabase("migrate") : await createManManV2Database("migrate_v2");
  dbs.push(db);
  const sql = createPool({ url: db.url, max, statementTimeoutMs: 10_000 });
  pools.push(sql);
  return sql;
}

const ids = (scope?: "contract" | "processor") => MIGRATIONS.filter((m) => !scope || m.scope === scope).map((m) => m.id);
const CONTRACT_TABLES = ["servers", "sessions", "server_ports", "log_references"];

/**
 * What the catalog says about the tables (all but processor_* ones, or the
 * ones named): columns, constraints, indexes, triggers, plus every function.
 */
async function catalog(sql: Sql, tables?: string[]) {
  const only = tables ? tables.join(",") : "";
  const rel = (name: string) => (tables ? tables.includes(name) : !name.startsWith("processor_"));
  const [relations, columns, constraints, indexes, triggers, functions] = await Promise.all([
    sql`SELECT relname, relkind FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind <> 'i' ORDER BY relname`,
    sql`SELECT c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull,
               pg_get_expr(d.adbin, d.adrelid) AS "default"
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY c.relname, a.attnum`,
    sql`SELECT conrelid::regclass::text AS relname, conname, pg_get_constraintdef(oid) AS def, convalidated
        FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2`,
    sql`SELECT tablename AS relname, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1, 2`,
    sql`SELECT tgrelid::regclass::text AS relname, tgname, pg_get_triggerdef(oid) AS def, tgenabled
        FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1, 2`,
    sql`SELECT proname, pg_get_functiondef(oid) AS def FROM pg_proc
        WHERE pronamespace = 'public'::regnamespace AND prokind = 'f' ORDER BY 1`,
  ]);
  const keep = (rows: Record<string, unknown>[]) => rows.filter((r) => rel(String(r.relname))).map((r) => ({ ...r }));
  return { only, relations: keep(relations), columns: keep(columns), constraints: keep(constraints), indexes: keep(indexes), triggers: keep(triggers), functions: functions.map((r) => ({ ...r })) };
}

const columnsOf = (sql: Sql, table: string) =>
  sql`SELECT column_name, data_type, is_nullable, column_default FROM information_schema.columns
      WHERE table_schema = 'public' AND table_name = ${table} ORDER BY ordinal_position`.then((rows) =>
    rows.map((c) => `${c.column_name} ${c.data_type}${c.is_nullable === "NO" ? " not null" : ""}${c.column_default ? ` = ${c.column_default}` : ""}`));

test("a fresh database gets every v2 column with upstream's types and defaults; migrating again changes nothing", async () => {
  const sql = await open("empty");
  const first = await migrate(sql);
  expect(first).toMatchObject({ mode: "standalone", applied: ids(), skipped: [] });
  expect(await columnsOf(sql, "servers")).toEqual([
    "server_id bigint not null = nextval('servers_server_id_seq'::regclass)", "name character varying not null",
    "status character varying not null = 'offline'::character varying", "last_seen timestamp without time zone",
    "created_at timestamp without time zone not null = CURRENT_TIMESTAMP", "updated_at timestamp without time zone not null = CURRENT_TIMESTAMP",
    "environment character varying", "is_default boolean not null = false", "host_public_address text",
    "drain_state text not null = 'schedulable'::text", "drain_requested_at timestamp with time zone",
  ]);
  expect(await columnsOf(sql, "sessions")).toEqual([
    "session_id bigint not null = nextval('sessions_session_id_seq'::regclass)", "sgc_id bigint not null",
    "started_at timestamp without time zone", "ended_at timestamp without time zone", "exit_code integer",
    "status character varying not null = 'pending'::character varying",
    "created_at timestamp without time zone not null = CURRENT_TIMESTAMP", "updated_at timestamp without time zone not null = CURRENT_TIMESTAMP",
    "restored_from_backup_id bigint",
  ]);
  expect(await columnsOf(sql, "server_ports")).toEqual([
    "server_id bigint not null", "port integer not null", "protocol character varying not null",
    "allocated_at timestamp without time zone not null = CURRENT_TIMESTAMP", "session_id bigint",
  ]);
  expect(await columnsOf(sql, "log_references")).toEqual([
    "log_id bigint not null = nextval('log_references_log_id_seq'::regclass)", "session_id bigint not null", "file_path text not null",
    "start_time timestamp without time zone not null", "end_time timestamp without time zone not null", "line_count integer not null",
    "source character varying not null", "created_at timestamp without time zone not null = CURRENT_TIMESTAMP",
    "sgc_id bigint", "minute_timestamp timestamp without time zone", "state character varying = 'complete'::character varying",
    "appended_at timestamp without time zone",
  ]);
  const before = await catalog(sql);
  const again = await migrate(sql);
  expect(again).toMatchObject({ mode: "standalone", applied: [], alreadyApplied: MIGRATIONS.length });
  expect(await catalog(sql)).toEqual(before);
});

test("standalone, the four tables are a ManManV2 database's to the catalog, but for foreign keys to API-only tables", async () => {
  const standalone = await open("empty");
  await migrate(standalone);
  const upstream = await catalog(await open("manmanv2"), CONTRACT_TABLES);
  const apiOnly = ["fk_log_references_sgc", "sessions_restored_from_backup_id_fkey", "sessions_sgc_id_fkey"];
  expect(await catalog(standalone, CONTRACT_TABLES)).toEqual({
    ...upstream,
    constraints: upstream.constraints.filter((c) => !apiOnly.includes(String(c.conname))),
  });
});

test("the updated_at trigger stamps every UPDATE of servers and sessions", async () => {
  const sql = await open("empty");
  await migrate(sql);
  const server = await insertServer(sql);
  const session = await insertSession(sql, { sgcId: 1 });
  await backdateUpdatedAt(sql, "servers", [server], 3600);
  await backdateUpdatedAt(sql, "sessions", [session], 3600);
  // The UPDATEs name no updated_at: the trigger alone must move it to now.
  await sql`UPDATE servers SET last_seen = now() WHERE server_id = ${server}`;
  await sql`UPDATE sessions SET status = 'starting' WHERE session_id = ${session}`;
  const [row] = await sql`
    SELECT (SELECT now() - updated_at FROM servers WHERE server_id = ${server}) < interval '1 minute' AS server_fresh,
           (SELECT now() - updated_at FROM sessions WHERE session_id = ${session}) < interval '1 minute' AS session_fresh`;
  expect(row).toEqual({ server_fresh: true, session_fresh: true });
});

test("server_ports: one row per server, port and protocol; TCP or UDP only; gone with its session or server", async () => {
  const sql = await open("empty");
  await migrate(sql);
  const [a, b] = [await insertServer(sql), await insertServer(sql)];
  const [s1, s2] = [await insertSession(sql, { sgcId: 1 }), await insertSession(sql, { sgcId: 2 })];
  await sql`INSERT INTO server_ports (server_id, port, protocol, session_id) VALUES
            (${a}, 27015, 'TCP', ${s1}), (${a}, 27015, 'UDP', ${s1}), (${b}, 27015, 'TCP', ${s2}), (${b}, 8080, 'TCP', NULL)`;
  const code = (p: Promise<unknown>) => p.then(() => "ok", (e: { code?: string }) => e.code);
  expect(await code(sql`INSERT INTO server_ports (server_id, port, protocol) VALUES (${a}, 27015, 'TCP')`)).toBe("23505");
  expect(await code(sql`INSERT INTO server_ports (server_id, port, protocol) VALUES (${a}, 1, 'SCTP')`)).toBe("23514");
  expect(await code(sql`INSERT INTO server_ports (server_id, port, protocol) VALUES (999999, 1, 'TCP')`)).toBe("23503");
  await sql`DELETE FROM sessions WHERE session_id = ${s1}`;
  await sql`DELETE FROM servers WHERE server_id = ${b}`;
  expect((await sql`SELECT count(*)::int AS n FROM server_ports`)[0]!.n).toBe(0);
});

test("an install that ran only 0001 and 0002 is upgraded to the same shape, its rows kept", async () => {
  const fresh = await open("empty");
  await migrate(fresh);
  const sql = await open("empty");
  await migrate(sql, { migrations: MIGRATIONS.slice(0, 2) });
  await sql`INSERT INTO servers (name, status) VALUES ('alpha', 'online')`;
  const session = await insertSession(sql, { sgcId: 7, status: "running" });
  await sql`INSERT INTO log_references (session_id, file_path, start_time, end_time, line_count, source)
            VALUES (${session}, 's3://b/k', now(), now(), 3, 'host')`;

  const r = await migrate(sql);
  expect(r).toMatchObject({ mode: "standalone", modeReason: "contract tables created by the processor", applied: ids().slice(2) });
  expect(await catalog(sql)).toEqual(await catalog(fresh));
  expect([...(await sql`SELECT name, status, is_default, drain_state FROM servers`)]).toEqual([{ name: "alpha", status: "online", is_default: false, drain_state: "schedulable" }]);
  expect([...(await sql`SELECT sgc_id, state FROM log_references`)]).toEqual([{ sgc_id: 7n, state: "complete" }]);
});

test("an old install whose log_references point at missing sessions still upgrades; the new key stays NOT VALID", async () => {
  const sql = await open("empty");
  await migrate(sql, { migrations: MIGRATIONS.slice(0, 2) });
  await sql`INSERT INTO log_references (session_id, file_path, start_time, end_time, line_count, source)
            VALUES (424242, 's3://b/k', now(), now(), 1, 'host')`;
  expect((await migrate(sql)).applied).toEqual(ids().slice(2));
  const [fk] = await sql`SELECT convalidated FROM pg_constraint WHERE conname = 'log_references_session_id_fkey'`;
  expect(fk).toEqual({ convalidated: false });
});

test("a ManManV2 database is left byte for byte as it was; only processor_* tables appear", async () => {
  const sql = await open("manmanv2");
  const d = await insertDeployment(sql);
  const session = await insertSession(sql, { sgcId: d.sgcId, status: "running" });
  const { volumeId, backupConfigId } = await insertBackupConfig(sql, { configId: d.configId });
  await insertBackup(sql, { sessionId: session, sgcId: d.sgcId, backupConfigId, volumeId });
  const rows = async () => Promise.all(["schema_migrations", ...MANMANV2_TABLES].map((t) => sql.unsafe(`SELECT to_jsonb(t) AS row FROM ${t} t ORDER BY to_jsonb(t)::text`)));
  const before = { catalog: await catalog(sql), rows: await rows() };

  const r = await migrate(sql);
  expect(r).toMatchObject({ mode: "manmanv2", modeReason: "schema_migrations (golang-migrate) exists", applied: ids("processor"), skipped: ids("contract") });
  expect(await catalog(sql)).toEqual(before.catalog);
  expect(await rows()).toEqual(before.rows);
  const ours = await sql`SELECT relname FROM pg_class WHERE relname LIKE 'processor\\_%' AND relkind = 'r' ORDER BY 1`;
  expect(ours.map((t) => t.relname)).toEqual(["processor_log_archive_parts", "processor_migrations", "processor_outbox", "processor_session_transitions"]);
  expect([...(await sql`SELECT version, dirty FROM schema_migrations`)]).toEqual([{ version: BigInt(MANMANV2_SCHEMA_VERSION), dirty: false }]);

  // Later starts skip the contract migrations again; nothing records them as run.
  expect(await migrate(sql)).toMatchObject({ mode: "manmanv2", applied: [], skipped: ids("contract") });
  expect(await catalog(sql)).toEqual(before.catalog);
});

test("tables the processor did not create mean ManManV2 even without golang-migrate's history", async () => {
  const bySgc = await open("empty");
  await bySgc.unsafe(`CREATE TABLE server_game_configs (sgc_id BIGSERIAL PRIMARY KEY);
                      CREATE TABLE sessions (session_id BIGSERIAL PRIMARY KEY, sgc_id BIGINT NOT NULL REFERENCES server_game_configs)`);
  const byServers = await open("empty");
  await byServers.unsafe(`CREATE TABLE servers (server_id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL, status TEXT NOT NULL, environment TEXT)`);
  for (const [sql, reason] of [[bySgc, "server_game_configs exists"], [byServers, "servers/sessions exist and were not created by the processor"]] as const) {
    const before = await catalog(sql);
    expect(await migrate(sql)).toMatchObject({ mode: "manmanv2", modeReason: reason, applied: ids("processor") });
    expect(await catalog(sql)).toEqual(before);
  }
});

test("replicas migrating at the same moment take turns under the advisory lock, standalone or on ManManV2", async () => {
  for (const kind of ["empty", "manmanv2"] as const) {
    const first = await open(kind, 1);
    const url = dbs.at(-1)!.url;
    const replicas = [first, ...Array.from({ length: 3 }, () => createPool({ url, max: 1, statementTimeoutMs: 10_000 }))];
    pools.push(...replicas.slice(1));
    const results = await Promise.all(replicas.map((p) => migrate(p)));
    // Exactly one of them applied each migration; the others found it done.
    const expected = kind === "empty" ? ids() : ids("processor");
    expect(results.flatMap((r) => r.applied).sort()).toEqual(expected.sort());
    const [history] = await first`SELECT count(*)::int AS n FROM processor_migrations`;
    expect(history!.n).toBe(expected.length);
  }
});

test("the ManManV2 fixture's helpers build a backup chain with upstream's defaults", async () => {
  const sql = await open("manmanv2");
  const d = await insertDeployment(sql, { serverName: "host-a" });
  const session = await insertSession(sql, { sgcId: d.sgcId });
  const { volumeId, backupConfigId } = await insertBackupConfig(sql, { configId: d.configId, cadenceMinutes: 30, volume: { volumeType: "named" } });
  const backup = await insertBackup(sql, { sessionId: session, sgcId: d.sgcId, backupConfigId, volumeId });
  const [row] = await sql`
    SELECT b.status, b.s3_url, b.size_bytes, c.enabled, c.cadence_minutes, v.volume_type, s.name
    FROM backups b JOIN backup_configs c USING (backup_config_id) JOIN game_config_volumes v ON v.volume_id = b.volume_id
    JOIN server_game_configs g ON g.sgc_id = b.server_game_config_id JOIN servers s ON s.server_id = g.server_id
    WHERE b.backup_id = ${backup}`;
  expect(row).toEqual({ status: "pending", s3_url: null, size_bytes: null, enabled: true, cadence_minutes: 30, volume_type: "named", name: "host-a" });
  const bad = await sql`UPDATE backups SET status = 'done' WHERE backup_id = ${backup}`.catch((e: { code?: string }) => e.code);
  expect(bad).toBe("23514");
});
