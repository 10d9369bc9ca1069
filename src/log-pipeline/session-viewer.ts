/**
 * SessionViewer, wired: the session list query (db/viewer-sessions.ts)
 * behind the RPC (rpc/sessions.ts), mounted on the Hono app (Connect and
 * gRPC-Web) beside LogProcessor and guarded by the same access check. Its
 * queries run under the viewer's limit (viewer-database.ts).
 */
import { selectViewerSessions } from "../db/viewer-sessions.ts";
import type { Sql } from "../db/pool.ts";
import { SessionViewer } from "../gen/manman/processor/v1/sessions_pb.ts";
import type { App } from "../http/app.ts";
import type { Logger } from "../log.ts";
import { callerOf, type AccessCheck } from "../rpc/access.ts";
import { mountRpc } from "../rpc/fetch.ts";
import { SESSION_LIST_REQUEST_MAX_BYTES } from "../rpc/request-limits.ts";
import { sessionViewerService } from "../rpc/sessions.ts";
import { createViewerLimiter, limitedQueries, type ViewerQueries } from "./viewer-database.ts";

export interface SessionViewerOptions {
  /** The viewer's pool (viewer-database.ts). */
  sql: Sql;
  /** The viewer's query limit, shared with LogHistory; a limit of its own unless given. */
  queries?: ViewerQueries;
  /** CORS_ORIGINS. */
  corsOrigins?: readonly string[];
  logger: Logger;
  /** The LogProcessor's access check: the session list is guarded like the logs. */
  access: AccessCheck;
  /** Ends open calls on shutdown. */
  signal: AbortSignal;
  /** The log service's instance id (LogService.instance), so both RPCs name the same numbering; a fresh one unless given. */
  instanceId?: string;
}

export function mountSessionViewer(app: App, { sql, queries, corsOrigins, logger, access, signal, instanceId }: SessionViewerOptions): void {
  const limited = queries ?? limitedQueries(createViewerLimiter());
  const service = sessionViewerService({
    selectSessions: (q) => limited(() => selectViewerSessions(sql, q)),
    log: logger.child({ component: "viewer" }),
    // Sequence numbers belong to this process's log hub: a new id per process
    // lets open pages notice a restart (see src/web/client/resume.ts).
    instanceId: instanceId ?? crypto.randomUUID(),
    authorize: (ctx) => access.admit(callerOf(ctx)),
  });
  // ListSessions may name 1,000 sessions: its own body cap (request-limits.ts).
  mountRpc(app, { routes: (router) => void router.service(SessionViewer, service), signal, corsOrigins, access, readMaxBytes: SESSION_LIST_REQUEST_MAX_BYTES });
}
