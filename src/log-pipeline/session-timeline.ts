/**
 * SessionTimeline, wired: the timeline query (db/session-timeline.ts) behind
 * the RPC (rpc/session-timeline.ts), mounted on the Hono app (Connect,
 * gRPC-Web) here; `routes` goes to the native gRPC server on GRPC_PORT
 * (log-service.ts), as LogHistory's does, with the same access check. Its
 * query runs under the viewer's limit (viewer-database.ts).
 */
import type { ConnectRouter } from "@connectrpc/connect";
import type { Sql } from "../db/pool.ts";
import { selectSessionTimeline } from "../db/session-timeline.ts";
import type { App } from "../http/app.ts";
import type { Logger } from "../log.ts";
import type { AccessCheck } from "../rpc/access.ts";
import { mountRpc } from "../rpc/fetch.ts";
import { createSessionTimeline } from "../rpc/session-timeline.ts";
import { createViewerLimiter, limitedQueries, type ViewerQueries } from "./viewer-database.ts";

export interface SessionTimelineOptions {
  /** The viewer's pool (viewer-database.ts). */
  sql: Sql;
  /** The viewer's query limit, shared with SessionViewer and LogHistory; a limit of its own unless given. */
  queries?: ViewerQueries;
  /** CORS_ORIGINS. */
  corsOrigins?: readonly string[];
  access: AccessCheck;
  logger: Logger;
  /** Ends open calls on shutdown. */
  signal: AbortSignal;
}

export function mountSessionTimeline(app: App, { sql, queries, corsOrigins, access, logger, signal }: SessionTimelineOptions): { routes(router: ConnectRouter): void } {
  const limited = queries ?? limitedQueries(createViewerLimiter());
  const rpc = createSessionTimeline({
    selectTimeline: (id, limit) => limited(() => selectSessionTimeline(sql, id, limit)),
    access,
    logger: logger.child({ component: "timeline" }),
  });
  mountRpc(app, { routes: rpc.routes, signal, corsOrigins, access });
  return { routes: rpc.routes };
}
