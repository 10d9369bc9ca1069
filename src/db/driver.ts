/**
 * Works around a postgres.js 3.4 trap: every new connection first fetches
 * the array types from an async function whose promise nobody awaits, so a
 * connection that dies during that one query (a database outage, a
 * restart) raises an unhandled rejection, and Bun exits on those. The types
 * are shared by all connections of a pool, so once one connection has
 * fetched them the others need not: after the first successful query, stop.
 */
import type { Sql } from "./pool.ts";

export function stopRefetchingTypes(sql: Sql): void {
  (sql.options as { fetch_types: boolean }).fetch_types = false;
}
