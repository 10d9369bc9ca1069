/**
 * manman.processor.v1.SessionViewer: the session list behind the browser viewer.
 * Read-only; served beside LogProcessor by the same Connect router.
 */
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { create } from "@bufbuild/protobuf";
import { SessionSchema, SessionViewer } from "../gen/manman/processor/v1/sessions_pb.ts";
import type { SessionQuery, SessionRow } from "../db/viewer-sessions.ts";
import type { Logger } from "../log.ts";
import { SERVER_INSTANCE_HEADER } from "../logs/server-instance.ts";

// 200: a page an operator can scan, and every active session of a large
// ManManV2 install (a few dozen game servers) with room to spare.
export const DEFAULT_SESSION_LIMIT = 200;
// 1000: bounds one answer to well under a megabyte and one query to
// milliseconds, whatever a client asks for.
export const MAX_SESSION_LIMIT = 1000;

export interface SessionViewerDeps {
  /** The session list query (db/viewer-sessions.ts). */
  selectSessions(q: SessionQuery): Promise<SessionRow[]>;
  log: Logger;
  /** Random per process: tells viewers that log sequence numbers started again. */
  instanceId: string;
  /** Rejects with a ConnectError (UNAUTHENTICATED, PERMISSION_DENIED) when the call may not proceed. */
  authorize?: (ctx: HandlerContext) => Promise<void>;
}

export function sessionViewerService(deps: SessionViewerDeps): ServiceImpl<typeof SessionViewer> {
  return {
    async listSessions(req, ctx) {
      await deps.authorize?.(ctx);
      if (req.limit < 0) throw new ConnectError("limit must not be negative", Code.InvalidArgument);
      if (req.sessionIds.some((id) => id < 1n)) throw new ConnectError("session_ids must be positive", Code.InvalidArgument);
      if (req.sessionIds.length > MAX_SESSION_LIMIT) {
        throw new ConnectError(`at most ${MAX_SESSION_LIMIT} session_ids per call`, Code.InvalidArgument);
      }
      const limit = Math.min(req.limit === 0 ? DEFAULT_SESSION_LIMIT : req.limit, MAX_SESSION_LIMIT);
      let rows;
      try {
        rows = await deps.selectSessions({ limit, sessionIds: req.sessionIds });
      } catch (err) {
        // Already a status (the viewer pool is full: log-pipeline/viewer-pool.ts).
        if (err instanceof ConnectError) throw err;
        deps.log.warn("listing sessions failed", { error: err });
        // The instance id rides along, so a viewer can still tell which
        // process answered and resume its log stream correctly.
        throw new ConnectError("the database did not answer", Code.Unavailable, { [SERVER_INSTANCE_HEADER]: deps.instanceId });
      }
      return {
        serverInstanceId: deps.instanceId,
        sessions: rows.map((r) =>
          create(SessionSchema, {
            sessionId: r.session_id,
            sgcId: r.sgc_id,
            status: r.status,
            startedAt: r.started_at ?? undefined,
            endedAt: r.ended_at ?? undefined,
            exitCode: r.exit_code ?? undefined,
            createdAt: r.created_at,
            updatedAt: r.updated_at,
          }),
        ),
      };
    },
  };
}
