/**
 * A fresh box: the configured database does not exist. `serve` and
 * `migrate` create it when the role may (logged once, naming the database
 * and host); a role without CREATEDB gets, at once and without waiting, the
 * exact commands that fix it, and running the printed createdb is enough.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { execFile } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import postgres from "postgres";
import { createVhost, PG_ADMIN_URL, type TestVhost } from "./support/services.ts";
import { spawnService, type ServiceProcess } from "./support/subprocess.ts";

const exec = promisify(execFile);
const admin = postgres(PG_ADMIN_URL, { max: 1, onnotice: () => {} });
const suffix = `${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
// A role that may log in and nothing more (no CREATEDB), as many managed databases hand out.
const PLAIN_ROLE = `mm_plain_${suffix}`;
const databases: string[] = [];
let vhost: TestVhost;

/** A database name nobody has created (removed after the file, if a test made it). */
function freshName(label: string): string {
  const name = `mm_fresh_${label}_${suffix}`;
  databases.push(name);
  return name;
}

function urlFor(database: string, user = "postgres"): string {
  const u = new URL(PG_ADMIN_URL);
  u.username = user;
  u.pathname = `/${database}`;
  return u.toString();
}

async function exists(database: string): Promise<boolean> {
  const rows = await admin`SELECT 1 FROM pg_database WHERE datname = ${database}`;
  return rows.length === 1;
}

function env(databaseUrl: string): Record<string, string> {
  return { RABBITMQ_URL: vhost.url, DATABASE_URL: databaseUrl, HEALTH_CHECK_PORT: "0", GRPC_PORT: "0", LOG_LEVEL: "info", LOG_ARCHIVE_DIR: join(tmpdir(), `manman-test-archive-${process.pid}`) };
}

const stderrOf = (p: ServiceProcess) => p.lines.map((l) => String(l.stderr ?? "")).join("");

beforeAll(async () => {
  vhost = await createVhost("freshbox");
  await admin.unsafe(`CREATE ROLE ${PLAIN_ROLE} LOGIN`);
});

afterAll(async () => {
  for (const name of databases) await admin.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  await admin.unsafe(`DROP ROLE IF EXISTS ${PLAIN_ROLE}`);
  await admin.end();
  await vhost?.remove();
});

test("serve on a database that does not exist creates it, says so once, migrates and becomes ready", async () => {
  const name = freshName("serve");
  expect(await exists(name)).toBe(false);
  const proc = spawnService(env(urlFor(name)));
  try {
    const port = await Promise.race([proc.ready, proc.exited.then((code) => Promise.reject(new Error(`exited ${code}: ${stderrOf(proc)}`)))]);
    expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);
  } finally {
    proc.child.kill("SIGTERM");
    expect(await proc.exited).toBe(0);
  }
  expect(await exists(name)).toBe(true);
  const created = proc.lines.filter((l) => l.msg === "created the database, which did not exist");
  expect(created).toHaveLength(1);
  expect(created[0]).toMatchObject({ level: "info", database: name, host: "127.0.0.1:5432", user: "postgres" });
  expect(proc.lines.some((l) => l.msg === "database unreachable at start; waiting for it")).toBe(false);
  const sql = postgres(urlFor(name), { max: 1, onnotice: () => {} });
  const [row] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM processor_migrations`;
  await sql.end();
  expect(row!.n).toBeGreaterThan(0);
}, 60_000);

test("migrate on a database that does not exist creates it and applies every migration, one log line each", async () => {
  const name = freshName("migrate");
  const proc = spawnService(env(urlFor(name)), ["migrate"]);
  expect(await proc.exited).toBe(0);
  expect(proc.lines.filter((l) => l.msg === "created the database, which did not exist")).toHaveLength(1);
  const steps = proc.lines.filter((l) => l.msg === "applying migration");
  expect(steps.length).toBeGreaterThan(1);
  expect(steps.map((l) => l.step)).toEqual(steps.map((_, i) => i + 1));
  expect(proc.lines.find((l) => l.msg === "migrated database")).toMatchObject({ already_applied: 0 });
  // Again: nothing to create, nothing to apply.
  const again = spawnService(env(urlFor(name)), ["migrate"]);
  expect(await again.exited).toBe(0);
  expect(again.lines.some((l) => l.msg === "created the database, which did not exist" || l.msg === "applying migration")).toBe(false);
}, 60_000);

for (const command of ["serve", "migrate"]) {
  test(`${command} as a role that may not create databases exits 1 at once with the createdb command and the SQL that fix it`, async () => {
    const name = freshName(`plain_${command}`);
    const started = Date.now();
    const proc = spawnService(env(urlFor(name, PLAIN_ROLE)), command === "serve" ? [] : ["migrate"]);
    expect(await proc.exited).toBe(1);
    // No retry loop: the answer comes at once.
    expect(Date.now() - started).toBeLessThan(10_000);
    const fatal = JSON.parse(stderrOf(proc).trim().split("\n").at(-1)!) as { msg: string; error: string };
    expect(fatal.msg).toBe("fatal");
    expect(fatal.error).toContain(`database ${name} does not exist on 127.0.0.1:5432 and role ${PLAIN_ROLE} cannot create it (it has neither CREATEDB nor SUPERUSER)`);
    expect(fatal.error).toContain(`createdb -h 127.0.0.1 -p 5432 -U postgres -O ${PLAIN_ROLE} ${name}`);
    expect(fatal.error).toContain(`CREATE DATABASE ${name} OWNER ${PLAIN_ROLE};`);
    expect(fatal.error).toContain(`ALTER ROLE ${PLAIN_ROLE} CREATEDB;`);
    expect(await exists(name)).toBe(false);
  }, 60_000);
}

test("running the printed createdb command is all it takes: migrate then works as that role", async () => {
  const name = freshName("printed");
  const refused = spawnService(env(urlFor(name, PLAIN_ROLE)), ["migrate"]);
  expect(await refused.exited).toBe(1);
  const command = /createdb [^—]+/.exec(stderrOf(refused))![0].trim().split(" ");
  await exec(command[0]!, command.slice(1));
  const proc = spawnService(env(urlFor(name, PLAIN_ROLE)), ["migrate"]);
  expect(await proc.exited).toBe(0);
  expect(proc.lines.some((l) => l.msg === "created the database, which did not exist")).toBe(false);
  expect(proc.lines.find((l) => l.msg === "migrated database")).toBeDefined();
}, 60_000);
