/**
 * Shared steps of the fault tests: sessions created in bulk, their whole
 * lifecycle published, and the checks every fault test makes (every
 * transition applied, announced at least once, nothing dead-lettered,
 * no half-applied row, what /readyz says).
 */
import type postgres from "postgres";
import type { BrokerPeer } from "./processor.ts";
import { waitFor } from "./services.ts";

export const LIFECYCLE = ["starting", "running", "stopping", "stopped"] as const;

/** Creates `n` pending sessions, each with its own game server config (no superseding). */
export async function createSessions(sql: postgres.Sql, n: number, sgcBase = 0): Promise<number[]> {
  const rows = await sql<{ session_id: string }[]>`
    INSERT INTO sessions (sgc_id) SELECT ${sgcBase} + g FROM generate_series(1, ${n}) g RETURNING session_id`;
  return rows.map((r) => Number(r.session_id));
}

export function sessionMessage(id: number, status: string): { key: string; body: Record<string, unknown> } {
  return {
    key: `status.session.${id}`,
    body: { session_id: id, sgc_id: 100_000 + id, status, ...(status === "stopped" ? { exit_code: 0 } : {}) },
  };
}

/** Publishes one lifecycle step of every session (interleaved across sessions). */
export async function publishStep(peer: BrokerPeer, ids: readonly number[], status: string): Promise<void> {
  await Promise.all(ids.map((id) => sessionMessage(id, status)).map((m) => peer.publish(m.key, m.body)));
}

export async function countSessions(sql: postgres.Sql, status: string): Promise<number> {
  const [row] = await sql<{ n: string }[]>`SELECT count(*) AS n FROM sessions WHERE status = ${status}`;
  return Number(row!.n);
}

/** Waits until every one of `ids` is stopped. */
export async function waitAllStopped(sql: postgres.Sql, ids: readonly number[], timeoutMs = 60_000): Promise<void> {
  await waitFor(
    async () => {
      const [row] = await sql<{ n: string }[]>`SELECT count(*) AS n FROM sessions WHERE session_id = ANY(${ids as number[]}::bigint[]) AND status = 'stopped'`;
      return Number(row!.n) === ids.length;
    },
    timeoutMs,
    `all ${ids.length} sessions stopped`,
  );
}

/** No half-applied change: timestamps and exit codes agree with the status of every row. */
export async function inconsistentSessions(sql: postgres.Sql): Promise<number> {
  const [row] = await sql<{ n: string }[]>`
    SELECT count(*) AS n FROM sessions
    WHERE (status IN ('running', 'stopping', 'stopped') AND started_at IS NULL)
       OR (status IN ('stopped', 'crashed', 'lost') AND ended_at IS NULL)
       OR (status IN ('pending', 'starting', 'running', 'stopping') AND ended_at IS NOT NULL)`;
  return Number(row!.n);
}

/** Waits until every session in `ids` was announced `running` and `stopped` (at least once each). */
export async function waitAllAnnounced(peer: BrokerPeer, ids: readonly number[], timeoutMs = 40_000): Promise<void> {
  const missing = () => {
    const seen = new Set(peer.external.map((e) => `${e.routingKey}:${(JSON.parse(e.body) as { session_id?: number }).session_id}`));
    return ids.filter((id) => !seen.has(`manman.session.running:${id}`) || !seen.has(`manman.session.stopped:${id}`));
  };
  try {
    await waitFor(() => missing().length === 0, timeoutMs, "every session announced running and stopped");
  } catch (err) {
    throw new Error(`${(err as Error).message}; missing ${missing().length}: ${missing().slice(0, 10).join(", ")}`);
  }
}

export async function readyz(url: string): Promise<{ status: number; body: Record<string, string> }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  return { status: res.status, body: (await res.json()) as Record<string, string> };
}

/** Log lines with this message. */
export function linesWith(logs: readonly Record<string, unknown>[], msg: string): Record<string, unknown>[] {
  return logs.filter((l) => l.msg === msg);
}
