/**
 * The composition root: config → adapters → components → serve. Everything
 * long-lived takes the one AbortSignal; `stopped` settles once the consumer
 * has drained and every connection is closed.
 */
import type { ConnectRouter } from "@connectrpc/connect";
import type { Config } from "./config.ts";
import type { Logger } from "./log.ts";
import { Metrics } from "./metrics.ts";
import { currentRuntime, type Runtime } from "./runtime/index.ts";
import { createPool, type Sql } from "./db/pool.ts";
import { migrate } from "./db/migrate.ts";
import { createMissingDatabase, isMissingDatabase } from "./db/create-database.ts";
import { stopRefetchingTypes } from "./db/driver.ts";
import { connectBroker } from "./amqp/connection.ts";
import { errorMessage } from "./util/errors.ts";
import { brokerTlsOptions } from "./amqp/tls.ts";
import { declareEventTopology } from "./amqp/topology.ts";
import { startEventPipeline } from "./event-pipeline/pipeline.ts";
import { createBareApp, createHttpApp, type App } from "./http/app.ts";
import { mountViewerPages } from "./web/serve.ts";
import { createLogAccess } from "./log-pipeline/log-access.ts";
import { createViewerDatabase } from "./log-pipeline/viewer-database.ts";
import type { LogIngest } from "./log-pipeline/ingest.ts";
import { startLogService } from "./log-pipeline/log-service.ts";
import type { LogHub } from "./logs/hub.ts";
import { formatLogTail, LOG_TAIL_LINES } from "./logs/tail.ts";
import { mountSessionViewer } from "./log-pipeline/session-viewer.ts";
import { mountLogHistory } from "./log-pipeline/log-history.ts";
import { mountSessionTimeline } from "./log-pipeline/session-timeline.ts";
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
  /** The bound METRICS_PORT, when /metrics and /status are served apart. */
  metricsPort?: number;
  metrics: Metrics;
  stopped: Promise<void>;
}

export async function startService({ config, logger, signal, runtime = currentRuntime(), metrics = new Metrics() }: ServiceOptions): Promise<Service> {
  const brokerTls = brokerTlsOptions(config.rabbitmqUrl, config); // first: a bad RABBITMQ_CA_CERT_PATH stops the start before any wait
  const sql = createPool({ url: config.postgresUrl, max: config.dbPoolMax, statementTimeoutMs: config.dbStatementTimeoutMs });
  await migrateWhenReachable(sql, config.postgresUrl, logger, signal);
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
  // events' log_tail: a crashed or lost session's last lines, from the log hub once it runs (none before)
  let hub: LogHub | undefined;
  const logTail = (id: number) => (hub ? formatLogTail(hub.tail(id, LOG_TAIL_LINES)) : []);
  const events = await startEventPipeline(config, { sql, session, logger, metrics, signal, logTail });

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
  // METRICS_PORT: /metrics and /status leave the public port for one of their own
  const operator: App = config.metricsPort === undefined ? app : createBareApp();
  operator.get("/metrics", (c) => {
    metrics.set("manman_event_messages_in_flight", "event messages received and not yet settled", events.consumer.inFlight());
    return c.text(metrics.render(), 200, { "content-type": "text/plain; version=0.0.4" });
  });
  // replicas: which one applies events, and since when
  operator.get("/status", (c) => c.json(events.consumer.role.status()));
  // access: who may call the log services (tokens, OIDC, protected or open), one check for all of them
  const access = createLogAccess(config, logger);
  // viewer: its own small pool, so viewers never take the event pool's connections
  const viewerDb = createViewerDatabase(config);
  const viewerQueries = { sql: viewerDb.sql, queries: viewerDb.queries, corsOrigins: config.corsOrigins };
  // history: LogHistory over the archive's rows and objects, on this app and (through the log service) on GRPC_PORT
  const history = mountLogHistory(app, { ...viewerQueries, store: createObjectStore(config), access, logger, metrics, signal });
  // logs: ingest → hub → LogProcessor on this app (Connect, gRPC-Web) and on GRPC_PORT (gRPC)
  // timeline: what happened to a session (processor_session_transitions), on both ports like LogHistory
  const timeline = mountSessionTimeline(app, { ...viewerQueries, access, logger, signal });
  const grpcRoutes = (router: ConnectRouter) => (history.routes(router), timeline.routes(router));
  const logs = await startLogService({ config, session, app, logger, metrics, signal, access, grpcRoutes });
  logIngest = logs.ingest;
  hub = logs.hub;
  // archive: every line, durably, to the directory or S3 the ManManV2 API reads (docs/archive.md)
  const archive = await startLogArchive(config, { sql, session, logger, metrics, signal });
  // viewer: pages and assets, and SessionViewer (guarded by the same tokens as the logs)
  mountViewerPages(app);
  mountSessionViewer(app, { ...viewerQueries, logger, signal, access, instanceId: logs.instance });

  // HTTP stays up while the consumer drains, so probes see /readyz go 503.
  const httpStop = new AbortController();
  const http = await runtime.serve({ port: config.healthCheckPort, fetch: (req, ctx) => app.fetch(req, ctx), signal: httpStop.signal });
  const metricsHttp = operator === app ? undefined : await runtime.serve({ port: config.metricsPort!, hostname: config.metricsHost, fetch: (req, ctx) => operator.fetch(req, ctx), signal: httpStop.signal });
  const grpcPort = logs.grpcPort;
  logger.info("manman-processor ready", { http_port: http.port, grpc_port: grpcPort, ...(metricsHttp ? { metrics_port: metricsHttp.port } : {}), queue: config.queueName });

  const stopped = (async () => {
    await aborted(signal);
    logger.info("shutting down: no new messages, draining in-flight ones");
    await Promise.all([events.stopped, logs.stopped, archive.stopped]);
    httpStop.abort();
    await settlesWithin(Promise.all([http.stopped, metricsHttp?.stopped]), 2000);
    await session.stop().catch(() => {});
    await Promise.all([sql.end({ timeout: 5 }), viewerDb.end()]);
    logger.info("stopped");
  })();

  return { httpPort: http.port, grpcPort, metricsPort: metricsHttp?.port, metrics, stopped };
}

/** Migrates, waiting (with backoff, one log line) while the database is unreachable; creates it when missing (or throws what to run). */
async function migrateWhenReachable(sql: Sql, url: string, logger: Logger, signal: AbortSignal): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      const result = await migrate(sql, { logger });
      if (result.applied.length > 0) logger.info("migrated database", { applied: result.applied });
      return;
    } catch (err) {
      if (signal.aborted) throw err;
      // a fresh box: create the database, or throw what to run (src/db/create-database.ts); an outage meanwhile is waited for below
      if (isMissingDatabase(err) && (await createMissingDatabase(url, logger))) continue;
      if ((err as { code?: string }).code?.match(/^(22|23|42)/)) throw err; // a real SQL error, not an outage
      if (attempt === 1) logger.warn("database unreachable at start; waiting for it", { error: errorMessage(err) });
      await sleep(backoff(attempt, 500, 10_000), signal);
    }
  }
}
