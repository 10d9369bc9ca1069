/**
 * The log archive for the composition root: the object store the settings
 * name (a directory, or S3 when S3_BUCKET is set) and the archiver on it.
 * A store that cannot be reached at start is not fatal: the archiver holds
 * lines and retries, and readiness says the archive is down meanwhile.
 */
import type { BrokerSession } from "../amqp/connection.ts";
import type { Config } from "../config.ts";
import type { Sql } from "../db/pool.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import { createObjectStore } from "../storage/create.ts";
import { errorMessage } from "../util/errors.ts";
import { startLogArchiver, type LogArchiver } from "./archiver.ts";

export interface LogArchiveDeps {
  sql: Sql;
  session: BrokerSession;
  logger: Logger;
  metrics: Metrics;
  signal: AbortSignal;
}

export async function startLogArchive(config: Config, deps: LogArchiveDeps): Promise<LogArchiver> {
  const store = createObjectStore(config);
  const log = deps.logger.child({ component: "log_archive" });
  try {
    await store.check(deps.signal);
    log.info("log archive storage", { kind: store.kind, location: store.location, retention_days: config.logArchiveRetentionDays ?? "forever" });
  } catch (err) {
    log.warn("log archive storage is not usable yet; lines are held until it is", { kind: store.kind, location: store.location, error: errorMessage(err) });
  }
  return startLogArchiver({ config, sql: deps.sql, session: deps.session, store, logger: deps.logger, metrics: deps.metrics, signal: deps.signal });
}
