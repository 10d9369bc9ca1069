import { describe, expect, test } from "bun:test";
import { hostOutcome, sessionMove, sessionOutcome } from "./apply.ts";
import type { SessionStatus } from "./messages.ts";

const msg = (status: SessionStatus["status"], exit_code?: number): SessionStatus => ({ session_id: 7, sgc_id: 3, status, exit_code });
const ev = { id: 1, routing_key: "manman.session.running", payload: {} };

describe("deciding what a session message did", () => {
  test("the move asks for the legal predecessors and carries the exit code", () => {
    expect(sessionMove(msg("crashed", 137))).toEqual({ sessionId: 7, to: "crashed", exitCode: 137, from: ["pending", "starting", "running", "stopping"] });
    expect(sessionMove(msg("running")).exitCode).toBeNull();
  });
  test("an unknown session is rejected", () => {
    expect(sessionOutcome(msg("running"), { previousStatus: null, moved: false, superseded: [], events: [] }).kind).toBe("rejected");
  });
  test("a committed move is applied with its events", () => {
    const o = sessionOutcome(msg("running"), { previousStatus: "starting", moved: true, superseded: [5], events: [ev] });
    expect(o.kind).toBe("applied");
    expect(o.events).toEqual([ev]);
    expect(o.detail).toContain("superseded sessions 5");
  });
  test("same state is accepted, backwards is stale, a skip is rejected", () => {
    const not = (previousStatus: "running" | "stopping" | "pending") => ({ previousStatus, moved: false, superseded: [], events: [] });
    expect(sessionOutcome(msg("running"), not("running")).kind).toBe("unchanged");
    expect(sessionOutcome(msg("running"), not("stopping")).kind).toBe("stale");
    expect(sessionOutcome(msg("stopped"), not("pending")).kind).toBe("rejected");
  });
});

describe("deciding what a host message did", () => {
  test("unknown server rejected, change applied, quiet heartbeat unchanged", () => {
    expect(hostOutcome(1, { found: false, previousStatus: null, events: [] }, "x").kind).toBe("rejected");
    expect(hostOutcome(1, { found: true, previousStatus: "offline", events: [ev] }, "x").kind).toBe("applied");
    expect(hostOutcome(1, { found: true, previousStatus: "online", events: [] }, "x").kind).toBe("unchanged");
  });
});
