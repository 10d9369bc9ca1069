/**
 * Works around a postgres.js 3.4 trap: every new connection first fetches
 * the array types from an async function whose promise nobody awaits, so a
 * connection that dies during that one query (a database outage, a
 * restart) raises an unhandled rejection, and Bun exits on those. The types
 * are shared by all connections of a pool, so once one connection has
 * fetched them the others need not: after the first successful query, stop.
 */
import postgres from "postgres";
import type { Sql } from "./pool.ts";
import { withTimeout } from "../util/timeout.ts";

export function stopRefetchingTypes(sql: Sql): void {
  (sql.options as { fetch_types: boolean }).fetch_types = false;
}

/**
 * A `SELECT 1` on a connection of its own, closed right after, given up
 * (socket destroyed) after `timeoutMs`. Probes see the database as a new
 * client would: a pooled probe connection was seen to hang for ~40 s after
 * the database killed it while idle (postgres.js on Bun), which kept the
 * watch reporting an outage that was over. One connection per probe is a
 * few milliseconds, at most once per readiness check or outage backoff step.
 */
export function freshConnectionProbe(url: string, timeoutMs: number): () => Promise<void> {
  return async () => {
    const sql = postgres(url, {
      max: 1,
      connect_timeout: Math.max(1, Math.ceil(timeoutMs / 1000)),
      fetch_types: false,
      onnotice: () => {},
      connection: { application_name: "manman-processor-probe", statement_timeout: timeoutMs },
    });
    try {
      await withTimeout(sql`SELECT 1`, timeoutMs, `no answer to SELECT 1 in ${timeoutMs} ms`);
    } finally {
      void sql.end({ timeout: 0 }).catch(() => {});
    }
  };
}
