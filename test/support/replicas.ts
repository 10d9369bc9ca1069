/**
 * Replicas as real processes (`bun src/main.ts`), each talking to the broker
 * and the database through TCP proxies of its own, so a test can kill one,
 * cut one's broker or database connection, and see which one applies
 * events (GET /status) and when it applied its first message (its log).
 * Used by the replica failover test and `bun run bench:failover`.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type postgres from "postgres";
import { BROKER_HOST, BROKER_PORT, PG_ADMIN_URL, waitFor, type TestDatabase, type TestVhost } from "./services.ts";
import { spawnService, type ServiceProcess } from "./subprocess.ts";
import { TcpProxy } from "./tcp-proxy.ts";

export interface Replica {
  name: string;
  broker: TcpProxy;
  db: TcpProxy;
  proc: ServiceProcess;
  httpPort: number;
  url(path: string): string;
}

/** What a replica logs once per event message it settles (heartbeats at debug). */
const OUTCOMES = new Set(["applied", "accepted unchanged", "ignored stale redelivery", "heartbeat"]);

export async function startReplica(name: string, vhost: TestVhost, db: TestDatabase, env: Record<string, string> = {}): Promise<Replica> {
  const pg = new URL(PG_ADMIN_URL);
  const [broker, dbProxy] = await Promise.all([TcpProxy.start(BROKER_HOST, BROKER_PORT), TcpProxy.start(pg.hostname, Number(pg.port || 5432))]);
  const proc = spawnService({
    RABBITMQ_URL: broker.route(vhost.url),
    DATABASE_URL: dbProxy.route(db.url),
    HEALTH_CHECK_PORT: "0",
    GRPC_PORT: "0",
    POD_NAME: name,
    LOG_LEVEL: "debug",
    LOG_ARCHIVE_DIR: mkdtempSync(join(tmpdir(), "mm-replica-archive-")),
    ...env,
  });
  const httpPort = await Promise.race([
    proc.ready,
    proc.exited.then((code) => Promise.reject(new Error(`${name} exited with ${code} before it was ready: ${JSON.stringify(proc.lines.slice(-5))}`))),
  ]);
  return { name, broker, db: dbProxy, proc, httpPort, url: (path) => `http://127.0.0.1:${httpPort}${path}` };
}

export async function stopReplica(r: Replica): Promise<void> {
  if (r.proc.child.exitCode === null && r.proc.child.signalCode === null) r.proc.child.kill("SIGKILL");
  await r.proc.exited;
  await Promise.all([r.broker.close(), r.db.close()]);
}

export interface Status {
  replica: string;
  role: "active" | "standby";
  since: string;
  queue: string;
  reason?: string;
}

/** GET /status, or undefined when the replica does not answer. */
export async function statusOf(r: Replica): Promise<Status | undefined> {
  try {
    const res = await fetch(r.url("/status"), { signal: AbortSignal.timeout(2000) });
    return res.ok ? ((await res.json()) as Status) : undefined;
  } catch {
    return undefined;
  }
}

/** The one of `among` that says it is active (waits for one). */
export async function activeOf(among: readonly Replica[], timeoutMs = 20_000): Promise<Replica> {
  return waitFor(async () => {
    for (const r of among) if ((await statusOf(r))?.role === "active") return r;
    return undefined;
  }, timeoutMs, `an active replica among ${among.map((r) => r.name).join(", ")}`);
}

/** True when exactly one of `among` is active and the rest stand by and are ready. */
export async function settled(among: readonly Replica[]): Promise<boolean> {
  const states = await Promise.all(among.map(async (r) => [await statusOf(r), (await fetch(r.url("/readyz")).catch(() => undefined))?.status] as const));
  return states.every(([s, ready]) => s !== undefined && ready === 200) && states.filter(([s]) => s!.role === "active").length === 1;
}

/** When (ms since the epoch, by its log's clock) `r` first settled an event message at or after `at`. */
export function firstWorkAt(r: Replica, at: number): number | undefined {
  for (const l of r.proc.lines) {
    if (!OUTCOMES.has(String(l.msg))) continue;
    const t = Date.parse(String(l.time));
    if (t >= at) return t;
  }
  return undefined;
}

/** Waits until one of `successors` settles a message at or after `at`: the failover time, and who. */
export async function failoverFrom(at: number, successors: readonly Replica[], timeoutMs = 30_000): Promise<{ to: Replica; ms: number }> {
  return waitFor(() => {
    let best: { to: Replica; ms: number } | undefined;
    for (const r of successors) {
      const t = firstWorkAt(r, at);
      if (t !== undefined && (!best || t - at < best.ms)) best = { to: r, ms: t - at };
    }
    return best;
  }, timeoutMs, `a successor applying events after ${new Date(at).toISOString()}`);
}

/** Host managers that heartbeat every `everyMs` until stopped: event traffic that never pauses. */
export function heartbeats(publish: (key: string, body: unknown) => Promise<void>, serverIds: readonly number[], everyMs: number): { stop(): Promise<void> } {
  let running = true;
  const loop = (async () => {
    while (running) {
      await Promise.all(serverIds.map((id) => publish(`health.host.${id}`, { server_id: id, session_stats: { total: 0 } }))).catch(() => {});
      await Bun.sleep(everyMs);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
    },
  };
}

const RANK: Record<string, number> = { pending: 0, starting: 1, running: 2, stopping: 3, stopped: 4, crashed: 4, lost: 4 };

/** Records every status change of every session row (a trigger), so no backwards move can slip between two looks. */
export async function watchSessionMoves(sql: postgres.Sql): Promise<{ backwards(): Promise<string[]>; count(): Promise<number> }> {
  await sql.unsafe(`
    CREATE TABLE test_session_moves (id bigserial PRIMARY KEY, session_id bigint, old_status text, new_status text);
    CREATE FUNCTION test_record_move() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN INSERT INTO test_session_moves (session_id, old_status, new_status) VALUES (NEW.session_id, OLD.status, NEW.status); RETURN NEW; END $$;
    CREATE TRIGGER test_record_move AFTER UPDATE OF status ON sessions
      FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION test_record_move();`);
  return {
    backwards: async () => {
      const rows = await sql<{ session_id: string; old_status: string; new_status: string }[]>`SELECT session_id, old_status, new_status FROM test_session_moves ORDER BY id`;
      return rows.filter((r) => RANK[r.new_status]! <= RANK[r.old_status]!).map((r) => `${r.session_id}: ${r.old_status} -> ${r.new_status}`);
    },
    count: async () => Number((await sql`SELECT count(*) AS n FROM test_session_moves`)[0]!.n),
  };
}
