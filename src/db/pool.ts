/**
 * The PostgreSQL pool (postgres.js). Timeouts everywhere, because postgres.js
 * on Bun has been seen to hang after idle (porsager/postgres#708, #817, #851)
 * and a query otherwise waits for a pool connection without limit.
 */
import postgres from "postgres";

export type Sql = postgres.Sql<{ bigint: bigint }>;

export interface PoolOptions {
  url: string;
  max: number;
  statementTimeoutMs: number;
  /** Application name shown in pg_stat_activity. */
  name?: string;
}

export function createPool(options: PoolOptions): Sql {
  return postgres(options.url, {
    max: options.max,
    // 30 s idle: close connections a quiet process doesn't need; 30 min
    // lifetime: survive failovers and pgbouncer rotations without a restart.
    // The idle timeout does not shrink the service's pool, though:
    // postgres.js hands queries to its open connections in turn (a FIFO),
    // and the stale sweeps' statements every second use each one more often
    // than once in 30 s, so the pool stays as large as its busiest moment
    // made it, up to DB_POOL_MAX (seen: 9 idle connections 5 minutes after
    // a 15-minute soak's traffic ended).
    idle_timeout: 30,
    max_lifetime: 30 * 60,
    // 5 s to connect: a reachable database answers in milliseconds; longer
    // means it is down, and the caller's retry loop takes over.
    connect_timeout: 5,
    // Reconnect delay after a failed connect, in seconds: 0.05 doubling to
    // 1. postgres.js's default grows to 20 s, which would keep queries
    // waiting up to 20 s after the database is back; the outage backoff is
    // DatabaseWatch's job, so this one stays short.
    backoff: (retries: number) => Math.min(0.05 * 2 ** retries, 1),
    onnotice: () => {},
    connection: {
      application_name: options.name ?? "manman-processor",
      statement_timeout: options.statementTimeoutMs,
    },
    types: {
      bigint: postgres.BigInt,
    },
  }) as unknown as Sql;
}
