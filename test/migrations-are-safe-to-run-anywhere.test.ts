import { afterEach, expect, test } from "bun:test";
import { createPool } from "../src/db/pool.ts";
import { migrate } from "../src/db/migrate.ts";
import { MIGRATIONS } from "../src/db/migrations.ts";
import { createDatabase, type TestDatabase } from "./support/services.ts";

let dbs: TestDatabase[] = [];
afterEach(async () => {
  await Promise.all(dbs.map((d) => d.remove()));
  dbs = [];
});

async function freshDatabase() {
  const db = await createDatabase("migrate");
  dbs.push(db);
  return db;
}

const columns = (sql: ReturnType<typeof createPool>, table: string) =>
  sql`SELECT column_name, data_type, is_nullable, column_default FROM information_schema.columns
      WHERE table_name = ${table} ORDER BY ordinal_position`;

test("a fresh database gets the contract's tables, and migrating again changes nothing", async () => {
  const db = await freshDatabase();
  const sql = createPool({ url: db.url, max: 2, statementTimeoutMs: 10_000 });
  try {
    const first = await migrate(sql);
    expect(first.applied).toEqual(MIGRATIONS.map((m) => m.id));
    expect((await columns(sql, "servers")).map((c) => c.column_name)).toEqual(["server_id", "name", "status", "last_seen", "created_at", "updated_at"]);
    expect((await columns(sql, "sessions")).map((c) => c.column_name)).toEqual([
      "session_id", "sgc_id", "started_at", "ended_at", "exit_code", "status", "created_at", "updated_at",
    ]);
    expect((await columns(sql, "log_references")).map((c) => c.column_name)).toEqual([
      "log_id", "session_id", "file_path", "start_time", "end_time", "line_count", "source", "created_at",
    ]);
    const again = await migrate(sql);
    expect(again.applied).toEqual([]);
    expect(again.alreadyApplied).toBe(MIGRATIONS.length);
  } finally {
    await sql.end();
  }
});

test("replicas migrating at the same moment take turns under the advisory lock", async () => {
  const db = await freshDatabase();
  const pools = Array.from({ length: 4 }, () => createPool({ url: db.url, max: 1, statementTimeoutMs: 10_000 }));
  try {
    const results = await Promise.all(pools.map((p) => migrate(p)));
    // Exactly one of them applied each migration; the others found it done.
    expect(results.flatMap((r) => r.applied).sort()).toEqual(MIGRATIONS.map((m) => m.id).sort());
    const [history] = await pools[0]!`SELECT count(*)::int AS n FROM processor_migrations`;
    expect(history!.n).toBe(MIGRATIONS.length);
  } finally {
    await Promise.all(pools.map((p) => p.end()));
  }
});

test("an existing ManManV2 database's tables are left exactly as they are", async () => {
  const db = await freshDatabase();
  const sql = createPool({ url: db.url, max: 2, statementTimeoutMs: 10_000 });
  try {
    // As the ManManV2 API creates them: a foreign key to server_game_configs,
    // columns the processor never touches, its own indexes and data.
    await sql.unsafe(`
      CREATE TABLE server_game_configs (sgc_id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL);
      CREATE TABLE servers (
        server_id BIGSERIAL PRIMARY KEY, name VARCHAR(255) NOT NULL UNIQUE,
        status VARCHAR(50) NOT NULL DEFAULT 'offline', last_seen TIMESTAMP,
        environment TEXT, created_at TIMESTAMP NOT NULL DEFAULT now(), updated_at TIMESTAMP NOT NULL DEFAULT now());
      CREATE TABLE sessions (
        session_id BIGSERIAL PRIMARY KEY, sgc_id BIGINT NOT NULL REFERENCES server_game_configs(sgc_id),
        started_at TIMESTAMP, ended_at TIMESTAMP, exit_code INTEGER, status VARCHAR(50) NOT NULL DEFAULT 'pending',
        parameters JSONB, created_at TIMESTAMP NOT NULL DEFAULT now(), updated_at TIMESTAMP NOT NULL DEFAULT now());
      CREATE INDEX sessions_status_idx ON sessions (status);
      INSERT INTO server_game_configs (name) VALUES ('valheim');
      INSERT INTO servers (name, environment) VALUES ('alpha', 'prod');
      INSERT INTO sessions (sgc_id, parameters) VALUES (1, '{"map": "x"}');`);
    const before = { servers: await columns(sql, "servers"), sessions: await columns(sql, "sessions") };
    const indexesBefore = await sql`SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN ('servers', 'sessions') ORDER BY indexname`;

    const r = await migrate(sql);
    expect(r.applied).toEqual(MIGRATIONS.map((m) => m.id));
    expect(await columns(sql, "servers")).toEqual(before.servers);
    expect(await columns(sql, "sessions")).toEqual(before.sessions);
    expect(await sql`SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN ('servers', 'sessions') ORDER BY indexname`).toEqual(indexesBefore);
    const [row] = await sql`SELECT s.parameters, v.environment FROM sessions s, servers v`;
    expect(row).toEqual({ parameters: { map: "x" }, environment: "prod" });
  } finally {
    await sql.end();
  }
});
