/**
 * Each test file gets its own RabbitMQ vhost and PostgreSQL database on the
 * real services (127.0.0.1), and removes them afterwards.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import postgres from "postgres";

const run = promisify(execFile);

export const BROKER_HOST = process.env.TEST_RABBITMQ_HOST ?? "127.0.0.1";
export const BROKER_PORT = Number(process.env.TEST_RABBITMQ_PORT ?? 5672);
export const PG_ADMIN_URL = process.env.TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

function uniqueName(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
}

export interface TestVhost {
  vhost: string;
  /** amqp URL for guest on this vhost. */
  url: string;
  remove(): Promise<void>;
}

/** rabbitmqctl is on every development and CI machine (the broker runs there). */
export async function createVhost(prefix = "mmtest"): Promise<TestVhost> {
  const vhost = uniqueName(prefix);
  await run("rabbitmqctl", ["-q", "add_vhost", vhost]);
  await run("rabbitmqctl", ["-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"]);
  return {
    vhost,
    url: `amqp://guest:guest@${BROKER_HOST}:${BROKER_PORT}/${encodeURIComponent(vhost)}`,
    remove: async () => {
      await run("rabbitmqctl", ["-q", "delete_vhost", vhost]).catch(() => {});
    },
  };
}

export interface TestDatabase {
  name: string;
  url: string;
  remove(): Promise<void>;
}

export async function createDatabase(prefix = "mmtest"): Promise<TestDatabase> {
  const name = uniqueName(prefix);
  const admin = postgres(PG_ADMIN_URL, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    remove: async () => {
      const a = postgres(PG_ADMIN_URL, { max: 1, onnotice: () => {} });
      try {
        await a.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      } finally {
        await a.end();
      }
    },
  };
}

/** Polls `probe` until it returns a truthy value or `timeoutMs` passes. */
export async function waitFor<T>(probe: () => T | Promise<T>, timeoutMs = 20_000, what = "condition"): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
