/**
 * The event pipeline, wired: the consumer (broker → core → database →
 * announcer), the outbox relay and the stale sweeps, all on one signal.
 * `stopped` settles once the consumer has drained and the relay and sweeps
 * have ended; the caller closes the broker session and the pool after.
 */
import type { BrokerSession } from "../amqp/connection.ts";
import { confirmedPublisher } from "../amqp/publisher.ts";
import type { Config } from "../config.ts";
import { freshConnectionProbe } from "../db/driver.ts";
import { createEventStore } from "../db/event-store.ts";
import type { Sql } from "../db/pool.ts";
import type { LogTailOf } from "../events/store.ts";
import { DatabaseWatch } from "../db/watch.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import { Announcer } from "./announcer.ts";
import { startEventConsumer, type EventConsumer } from "./consumer.ts";
import { startBackupScheduler } from "./backup-scheduler.ts";
import { OutboxRelay } from "./outbox-relay.ts";
import { startStaleSweeps } from "./stale-sweeps.ts";

// 2 s for a probe's SELECT 1, the readiness check's own deadline.
const PROBE_TIMEOUT_MS = 2000;

export interface EventPipelineDeps {
  sql: Sql;
  session: BrokerSession;
  logger: Logger;
  metrics: Metrics;
  signal: AbortSignal;
  /** The last log lines crashed and lost events carry (service.ts wires the log hub). */
  logTail?: LogTailOf;
}

export interface EventPipeline {
  /** Whether the database answers, for readiness. */
  database: DatabaseWatch;
  consumer: EventConsumer;
  /** Settles once the consumer has drained and the relay and sweeps have stopped. */
  stopped: Promise<void>;
}

export async function startEventPipeline(config: Config, deps: EventPipelineDeps): Promise<EventPipeline> {
  const { sql, session, logger, metrics, signal } = deps;
  const publisher = confirmedPublisher(session);
  const announcer = new Announcer({ sql, publisher, exchange: config.externalExchange, logger, metrics });
  // Probes run on a connection of their own (src/db/driver.ts): behind a
  // main pool full of stuck queries a probe would wait without limit.
  const database = new DatabaseWatch(freshConnectionProbe(config.postgresUrl, PROBE_TIMEOUT_MS), logger, metrics, signal);
  const store = createEventStore(sql, deps.logTail);
  const consumer = await startEventConsumer(config, { session, store, announcer, publisher, database, logger, metrics, signal });
  const sweeps = startStaleSweeps(
    { hostThresholdSeconds: config.staleHostThresholdSeconds, sessionThresholdSeconds: config.staleSessionThresholdSeconds, intervalSeconds: config.staleCheckIntervalSeconds },
    { sql, announcer, logger, metrics, logTail: deps.logTail },
    signal,
  );
  const relay = new OutboxRelay({ sql, announcer, logger, metrics }).run(signal);
  // backups: scheduled backups, their commands through the outbox, and the stale backup sweep (docs/backups.md)
  const backups = startBackupScheduler(config, { sql, announcer, logger, metrics }, signal);
  const stopped = consumer.stopped.then(() => Promise.all([sweeps.stopped, relay])).then(() => {});
  return { database, consumer, stopped: stopped.then(() => backups.stopped) };
}
