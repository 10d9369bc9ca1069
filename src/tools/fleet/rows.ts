/**
 * The rows a simulated fleet needs, written as the ManManV2 API writes them:
 * a `servers` row per host (the processor drops host messages for a server
 * with no row) and a `pending` `sessions` row per session (it dead-letters
 * status messages for a session with no row). Hosts are found again by
 * name, so a second run reuses its servers; sessions are always new.
 */
import type postgres from "postgres";

type Sql = postgres.Sql<{ bigint: bigint }>;

/** The server_id of each name: created offline when missing, as the API registers a host. */
export async function ensureServers(sql: Sql, names: readonly string[]): Promise<number[]> {
  const ids: number[] = [];
  for (const name of names) {
    // DO UPDATE (a no-op) rather than DO NOTHING, so RETURNING answers for an existing row too.
    const [row] = await sql<{ server_id: bigint }[]>`
      INSERT INTO servers (name, status) VALUES (${name}, 'offline')
      ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name
      RETURNING server_id`;
    ids.push(Number(row!.server_id));
  }
  return ids;
}

/** A new `pending` session of `sgcId`; its session_id. */
export async function insertPendingSession(sql: Sql, sgcId: number): Promise<number> {
  const [row] = await sql<{ session_id: bigint }[]>`INSERT INTO sessions (sgc_id, status) VALUES (${sgcId}, 'pending') RETURNING session_id`;
  return Number(row!.session_id);
}

/** `<prefix>-1` … `<prefix>-<n>`. */
export function hostNames(prefix: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}-${i + 1}`);
}
