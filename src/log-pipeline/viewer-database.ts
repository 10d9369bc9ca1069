/**
 * The viewer's own database pool: SessionViewer's list and LogHistory's
 * rows (pages, ranges, histogram counts) run here, not on the event pool,
 * so a crowd of viewers (or one hostile client) cannot take the
 * connections event processing needs, and a burst of viewer calls waits in
 * a bounded queue instead of piling up inside postgres.js without limit.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import type { Config } from "../config.ts";
import { stopRefetchingTypes } from "../db/driver.ts";
import { createPool, type Sql } from "../db/pool.ts";
import { createLimiter, LimiterFull, LimiterTimeout, type Limiter } from "../util/limiter.ts";

// 4 connections: every viewer statement is one indexed read of a few
// milliseconds, so four serve hundreds of calls a second, far more than the
// operators watching logs; with three replicas that is 12 connections
// beside the event pools' 3 × DB_POOL_MAX (10), well inside PostgreSQL's
// default max_connections of 100.
export const VIEWER_POOL_MAX = 4;
// 64 waiting: a page load makes two or three calls, so ~20 viewers opening
// pages at the same instant still all get an answer.
export const VIEWER_MAX_WAITING = 64;
// 2 s waiting for a connection: longer means the database is slow or the
// queue is a flood; the client is told UNAVAILABLE and retries.
export const VIEWER_MAX_WAIT_MS = 2000;

/** Runs one viewer query under the limit; a refusal is already a status (RESOURCE_EXHAUSTED, UNAVAILABLE). */
export type ViewerQueries = <T>(work: () => Promise<T>) => Promise<T>;

export interface ViewerDatabase {
  sql: Sql;
  queries: ViewerQueries;
  limiter: Limiter;
  end(): Promise<void>;
}

export function createViewerDatabase(config: Pick<Config, "postgresUrl" | "dbStatementTimeoutMs">): ViewerDatabase {
  const sql = createPool({ url: config.postgresUrl, max: VIEWER_POOL_MAX, statementTimeoutMs: config.dbStatementTimeoutMs, name: "manman-processor-viewer" });
  const limiter = createViewerLimiter();
  // postgres.js learns the array types on a pool's first connection; a query
  // built before that sends its arrays untyped ("malformed array literal"),
  // so the first query waits for one SELECT, after which the pool stops
  // refetching them (db/driver.ts: the unawaited refetch is a crash trap).
  let typesKnown: Promise<void> | undefined;
  const learnTypes = () =>
    (typesKnown ??= sql`SELECT 1`.then(
      () => stopRefetchingTypes(sql),
      (err: unknown) => {
        typesKnown = undefined;
        throw err;
      },
    ));
  void learnTypes().catch(() => {}); // at once, while the database is known to be up; queries retry it
  const limited = limitedQueries(limiter);
  const queries: ViewerQueries = (work) => limited(async () => (await learnTypes(), work()));
  return { sql, limiter, queries, end: () => sql.end({ timeout: 5 }) };
}

export function createViewerLimiter(): Limiter {
  return createLimiter({ concurrency: VIEWER_POOL_MAX, maxWaiting: VIEWER_MAX_WAITING, maxWaitMs: VIEWER_MAX_WAIT_MS });
}

/** Viewer queries through `limiter`, its refusals turned into statuses. */
export function limitedQueries(limiter: Limiter): ViewerQueries {
  return async (work) => {
    try {
      return await limiter.run(work);
    } catch (err) {
      if (err instanceof LimiterFull) throw new ConnectError("too many viewer queries at once; retry shortly", Code.ResourceExhausted);
      if (err instanceof LimiterTimeout) throw new ConnectError(`no database connection for the viewer within ${VIEWER_MAX_WAIT_MS} ms; retry shortly`, Code.Unavailable);
      throw err;
    }
  };
}
