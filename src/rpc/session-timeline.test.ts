import { expect, test } from "bun:test";
import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import { SessionTimeline } from "../gen/manman/processor/v1/session_timeline_pb.ts";
import type { TransitionRow } from "../db/session-timeline.ts";
import { silentLogger } from "../log.ts";
import { createAccessCheck } from "./access.ts";
import { createSessionTimeline, MAX_TRANSITIONS } from "./session-timeline.ts";

function timelineClient(select: (id: bigint, limit: number) => Promise<TransitionRow[]>) {
  const rpc = createSessionTimeline({ selectTimeline: select, access: createAccessCheck({ access: "open" }), logger: silentLogger });
  return createClient(SessionTimeline, createRouterTransport(rpc.routes));
}
const codeOf = (p: Promise<unknown>) => p.then(() => "ok", (e) => ConnectError.from(e).code);

test("rows become transitions: NULLs are absent fields, a sweep's missing routing key is empty", async () => {
  const asked: [bigint, number][] = [];
  const client = timelineClient(async (id, limit) => {
    asked.push([id, limit]);
    return [
      { at: 1000n, from_status: "running", to_status: "stopped", exit_code: null, reason: "superseded", routing_key: "status.session.8", by_session_id: 8n },
      { at: 2000n, from_status: "stopping", to_status: "lost", exit_code: null, reason: "stale_sweep", routing_key: null, by_session_id: null },
      { at: 3000n, from_status: "running", to_status: "crashed", exit_code: 0, reason: "message", routing_key: "status.session.7", by_session_id: null },
    ];
  });
  const res = await client.getSessionTimeline({ sessionId: 7n });
  expect(asked).toEqual([[7n, MAX_TRANSITIONS]]);
  expect(res.transitions.map((t) => [t.at, t.fromStatus, t.toStatus, t.exitCode, t.reason, t.routingKey, t.bySessionId])).toEqual([
    [1000n, "running", "stopped", undefined, "superseded", "status.session.8", 8n],
    [2000n, "stopping", "lost", undefined, "stale_sweep", "", undefined],
    [3000n, "running", "crashed", 0, "message", "status.session.7", undefined],
  ]);
});

test("a session id that is not positive is INVALID_ARGUMENT without a query; a failing database is UNAVAILABLE", async () => {
  let queries = 0;
  const ok = timelineClient(async () => (queries++, []));
  expect(await codeOf(ok.getSessionTimeline({ sessionId: 0n }))).toBe(Code.InvalidArgument);
  expect(await codeOf(ok.getSessionTimeline({ sessionId: -1n }))).toBe(Code.InvalidArgument);
  expect(await codeOf(ok.getSessionTimeline({}))).toBe(Code.InvalidArgument);
  expect(queries).toBe(0);
  const down = timelineClient(async () => {
    throw new Error("connection refused");
  });
  expect(await codeOf(down.getSessionTimeline({ sessionId: 7n }))).toBe(Code.Unavailable);
  const full = timelineClient(async () => {
    throw new ConnectError("the viewer's database queries are all busy", Code.ResourceExhausted);
  });
  expect(await codeOf(full.getSessionTimeline({ sessionId: 7n }))).toBe(Code.ResourceExhausted);
});
