/**
 * manman.processor.v1.SessionTimeline (proto/manman/processor/v1/
 * session_timeline.proto): what happened to a session, read from
 * processor_session_transitions. Transport-free like LogHistory: `routes`
 * registers it on any Connect router, and the wiring
 * (log-pipeline/session-timeline.ts) gives it to both ports. Token-checked
 * with the LogProcessor's tokens. The request is checked with valibot (a
 * session id that is not positive is INVALID_ARGUMENT); a database that does
 * not answer is UNAVAILABLE.
 */
import { Code, ConnectError, type ConnectRouter, type HandlerContext } from "@connectrpc/connect";
import { create } from "@bufbuild/protobuf";
import * as v from "valibot";
import {
  GetSessionTimelineResponseSchema,
  SessionTimeline,
  SessionTransitionSchema,
  type GetSessionTimelineRequest,
  type GetSessionTimelineResponse,
} from "../gen/manman/processor/v1/session_timeline_pb.ts";
import type { TransitionRow } from "../db/session-timeline.ts";
import type { Logger } from "../log.ts";
import { callerOf, type AccessCheck } from "./access.ts";

// A session only moves forward, so it has at most 5 rows (pending → starting
// → running → stopping → an end); 100 bounds an answer whatever the table holds.
export const MAX_TRANSITIONS = 100;

const Request = v.object({
  sessionId: v.pipe(v.bigint(), v.minValue(1n, "session_id must be positive")),
});

export interface SessionTimelineDeps {
  selectTimeline(sessionId: bigint, limit: number): Promise<TransitionRow[]>;
  access: AccessCheck;
  logger: Logger;
}

export interface SessionTimelineRpc {
  routes(router: ConnectRouter): void;
}

export function createSessionTimeline(deps: SessionTimelineDeps): SessionTimelineRpc {
  async function getSessionTimeline(req: GetSessionTimelineRequest, ctx: HandlerContext): Promise<GetSessionTimelineResponse> {
    await deps.access.admit(callerOf(ctx));
    const parsed = v.safeParse(Request, { sessionId: req.sessionId });
    if (!parsed.success) throw new ConnectError(parsed.issues.map((i) => i.message).join("; "), Code.InvalidArgument);
    let rows: TransitionRow[];
    try {
      rows = await deps.selectTimeline(parsed.output.sessionId, MAX_TRANSITIONS);
    } catch (err) {
      // Already a status (the viewer pool is full: log-pipeline/viewer-database.ts).
      if (err instanceof ConnectError) throw err;
      deps.logger.warn("reading a session timeline failed", { session_id: String(req.sessionId), error: err });
      throw new ConnectError("the database did not answer", Code.Unavailable);
    }
    return create(GetSessionTimelineResponseSchema, { transitions: rows.map(transition) });
  }
  return { routes: (router) => void router.service(SessionTimeline, { getSessionTimeline }) };
}

function transition(r: TransitionRow) {
  return create(SessionTransitionSchema, {
    at: r.at,
    fromStatus: r.from_status,
    toStatus: r.to_status,
    exitCode: r.exit_code ?? undefined,
    reason: r.reason,
    routingKey: r.routing_key ?? "",
    bySessionId: r.by_session_id ?? undefined,
  });
}
