/**
 * The composition root: config → adapters → components → serve. Everything
 * long-lived takes the one AbortSignal; `stopped` settles once the consumer
 * has drained and every connection is closed.
 */
import type { Config } from "./config.ts";
import type { Logger } from "./log.ts";
import { Metrics } from "./metrics.ts";
import { currentRuntime, type Runtime } from "./runtime/index.ts";
import { createPool, type Sql } from "./db/pool.ts";
import { migrate } from "./db/migrate.ts";
import { stopRefetchingTypes } from "./db/driver.ts";
import { connectBroker } from "./amqp/connection.ts";
import { errorMessage } from "./util/errors.ts";
import { brokerTlsOptions } from "./amqp/tls.ts";
import { declareEventTopology } from "./amqp/topology.ts";
import { startEventPipeline } from "./event-pipeline/pipeline.ts";
import { createHttpApp } from "./http/app.ts";
import { mountViewerPages } from "./web/serve.ts";
import { createAccessCheck } from "./rpc/access.ts";
import type { LogIngest } from "./log-pipeline/ingest.ts";
import { startLogService } from "./log-pipeline/log-service.ts";
import { mountSessionViewer } from "./log-pipeline/session-viewer.ts";
import { mountLogHistory } from "./log-pipeline/log-history.ts";
import { createObjectStore } from "./storage/create.ts";
import { startLogArchive } from "./log-pipeline/archive.ts";
import { backoff, sleep } from "./util/time.ts";
import { aborted } from "./util/abort.ts";
import { settlesWithin } from "./util/timeout.ts";

export interface ServiceOptions {
  config: Config;
  logger: Logger;
  signal: AbortSignal;
  runtime?: Runtime;
  metrics?: Metrics;
}

export interface Service {
  httpPort: number;
  grpcPort: number;
  metrics: Metrics;
  stopped: Promise<void>;
}

export async function startService({ config, logger, signal, runtime = currentRuntime(), metrics = new Metrics() }: ServiceOptions): Promise<Service> {
  const brokerTls = brokerTlsOptions(config.rabbitmqUrl, config); // first: a bad RABBITMQ_CA_CERT_PATH stops the start before any wait
  const sql = createPool({ url: config.postgresUrl, max: config.dbPoolMax, statementTimeoutMs: config.dbStatementTimeoutMs });
  await migrateWhenReachable(sql, logger, signal);
  stopRefetchingTypes(sql); // array types are fetched now (src/db/driver.ts)

  // logs: set once the log service has started; its queue is declared again on every reconnect
  let logIngest: LogIngest | undefined;
  const session = await connectBroker({
    url: config.rabbitmqUrl,
    tls: brokerTls,
    logger,
    signal,
    metrics,
    onConnect: async (s) => {
      await declareEventTopology(s, config, logger);
      // logs: the log ingest's exclusive queue died with the old connection; declare it again
      await logIngest?.reattach();
    },
  });
  // events: consumer → core → database → announcer, with the outbox relay and the stale sweeps
  const events = await startEventPipeline(config, { sql, session, logger, metrics, signal });

  const app = createHttpApp([
    { name: "database", check: () => events.database.check() },
    { name: "broker", check: () => !session.closed },
    // replicas: active, or standing by in good order (a standby is ready: docs/replicas.md)
    { name: "event_consumer", check: () => events.consumer.role.ready() },
    // Read lazily: the log service starts after the app exists.
    { name: "log_ingest", check: () => logs.attached() },
    // archive: consuming, and every write going through (throws the reason)
    { name: "log_archive", check: () => archive.check() },
  ]);
  app.get("/metrics", (c) => {
    metrics.set("manman_event_messages_in_flight", "event messages received and not yet settled", events.consumer.inFlight());
    return c.text(metrics.render(), 200, { "content-type": "text/plain; version=0.0.4" });
  });
  // replicas: which one applies events, and since when
  app.get("/status", (c) => c.json(events.consumer.role.status()));
  // history: LogHistory over the archive's rows and objects, on this app and (through the log service) on GRPC_PORT
  const access = createAccessCheck(config.logAccessTokens ?? []);
  const history = mountLogHistory(app, { sql, store: createObjectStore(config), access, logger, metrics, signal });
  // logs: ingest → hub → LogProcessor on this app (Connect, gRPC-Web) and on GRPC_PORT (gRPC)
  const logs = await startLogService({ config, session, app, logger, metrics, signal, grpcRoutes: history.routes });
  logIngest = logs.ingest;
  // archive: every line, durably, to the directory or S3 the ManManV2 API reads (docs/archive.md)
  const archive = await startLogArchive(config, { sql, session, logger, metrics, signal });
  // viewer: pages and assets, and SessionViewer (guarded by the same tokens as the logs)
  mountViewerPages(app);
  mountSessionViewer(app, { sql, logger, signal, access: createAccessCheck(config.logAccessTokens ?? []), instanceId: logs.instance });

  // HTTP stays up while the consumer drains, so probes see /readyz go 503.
  const httpStop = new AbortController();
  const http = await runtime.serve({ port: config.healthCheckPort, fetch: (req, ctx) => app.fetch(req, ctx), signal: httpStop.signal });
  const grpcPort = logs.grpcPort;
  logger.info("manman-processor ready", { http_port: http.port, grpc_port: grpcPort, queue: config.queueName });

  const stopped = (async () => {
    await aborted(signal);
    logger.info("shutting down: no new messages, draining in-flight ones");
    await Promise.all([events.stopped, logs.stopped, archive.stopped]);
    httpStop.abort();
    await settlesWithin(http.stopped, 2000);
    await session.stop().catch(() => {});
    await sql.end({ timeout: 5 });
    logger.info("stopped");
  })();

  return { httpPort: http.port, grpcPort, metrics, stopped };
}

/** Migrates, waiting (with backoff, one log line) while the database is unreachable. */
async function migrateWhenReachable(sql: Sql, logger: Logger, signal: AbortSignal): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      const result = await migrate(sql, { logger });
      if (result.applied.length > 0) logger.info("migrated database", { applied: result.applied });
      return;
    } catch (err) {
      if (signal.aborted) throw err;
      if ((err as { code?: string }).code?.match(/^(22|23|42)/)) throw err; // a real SQL error, not an outage
      if (attempt === 1) logger.warn("database unreachable at start; waiting for it", { error: errorMessage(err) });
      await sleep(backoff(attempt, 500, 10_000), signal);
    }
  }
}
