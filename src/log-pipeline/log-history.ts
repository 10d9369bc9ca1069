/**
 * LogHistory, wired: the archive's rows (db/log-history.ts) and objects
 * (storage/) behind the RPC (rpc/log-history.ts), mounted on the Hono app
 * (Connect, gRPC-Web) here; `routes` goes to the native gRPC server on
 * GRPC_PORT (log-service.ts), so the service answers on both ports like
 * LogProcessor, with the same access check. Its row queries run under the
 * viewer's limit (viewer-database.ts); object reads have their own bound.
 */
import type { ConnectRouter } from "@connectrpc/connect";
import { selectArchiveObjects, selectArchivedRange, selectHistogramCounts } from "../db/log-history.ts";
import type { Sql } from "../db/pool.ts";
import type { App } from "../http/app.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import type { AccessCheck } from "../rpc/access.ts";
import { mountRpc } from "../rpc/fetch.ts";
import { createLogHistory } from "../rpc/log-history.ts";
import type { ObjectStore } from "../storage/store.ts";
import { createViewerLimiter, limitedQueries, type ViewerQueries } from "./viewer-database.ts";

export interface LogHistoryOptions {
  /** The viewer's pool (viewer-database.ts). */
  sql: Sql;
  /** The viewer's query limit, shared with SessionViewer; a limit of its own unless given. */
  queries?: ViewerQueries;
  /** CORS_ORIGINS. */
  corsOrigins?: readonly string[];
  /** Where the archive writer puts objects (storage/create.ts from the same settings). */
  store: ObjectStore;
  /** The LogProcessor's access check. */
  access: AccessCheck;
  logger: Logger;
  metrics?: Metrics;
  /** Ends open calls on shutdown. */
  signal: AbortSignal;
}

export interface MountedLogHistory {
  /** Registers LogHistory on a router: give it to the gRPC server. */
  routes(router: ConnectRouter): void;
}

export function mountLogHistory(app: App, { sql, queries, corsOrigins, store, access, logger, metrics, signal }: LogHistoryOptions): MountedLogHistory {
  const limited = queries ?? limitedQueries(createViewerLimiter());
  const rpc = createLogHistory({
    selectObjects: (q) => limited(() => selectArchiveObjects(sql, q)),
    selectArchivedRange: (id) => limited(() => selectArchivedRange(sql, id)),
    selectHistogramCounts: (q) => limited(() => selectHistogramCounts(sql, q)),
    store,
    access,
    logger,
    metrics,
  });
  mountRpc(app, { routes: rpc.routes, signal, corsOrigins, access });
  return { routes: rpc.routes };
}
