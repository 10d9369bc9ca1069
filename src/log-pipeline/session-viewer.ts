/**
 * SessionViewer, wired: the session list query (db/viewer-sessions.ts)
 * behind the RPC (rpc/sessions.ts), mounted on the Hono app (Connect and
 * gRPC-Web) beside LogProcessor and guarded by the same tokens.
 */
import { selectViewerSessions } from "../db/viewer-sessions.ts";
import type { Sql } from "../db/pool.ts";
import { SessionViewer } from "../gen/manman/processor/v1/sessions_pb.ts";
import type { App } from "../http/app.ts";
import type { Logger } from "../log.ts";
import type { AccessCheck } from "../rpc/access.ts";
import { mountRpc } from "../rpc/fetch.ts";
import { sessionViewerService } from "../rpc/sessions.ts";

export interface SessionViewerOptions {
  sql: Sql;
  logger: Logger;
  /** The LogProcessor's token check: the session list is guarded like the logs. */
  access: AccessCheck;
  /** Ends open calls on shutdown. */
  signal: AbortSignal;
  /** The log service's instance id (LogService.instance), so both RPCs name the same numbering; a fresh one unless given. */
  instanceId?: string;
}

export function mountSessionViewer(app: App, { sql, logger, access, signal, instanceId }: SessionViewerOptions): void {
  const service = sessionViewerService({
    selectSessions: (q) => selectViewerSessions(sql, q),
    log: logger.child({ component: "viewer" }),
    // Sequence numbers belong to this process's log hub: a new id per process
    // lets open pages notice a restart (see src/web/client/resume.ts).
    instanceId: instanceId ?? crypto.randomUUID(),
    authorize: (ctx) => access.assert(ctx.requestHeader.get("authorization")),
  });
  mountRpc(app, { routes: (router) => void router.service(SessionViewer, service), signal });
}
