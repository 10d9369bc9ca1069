import { describe, expect, test } from "bun:test";
import { SESSION_STATES, classifyMove, legalPredecessors, type Move, type SessionState } from "./session-machine.ts";

// The whole 7×7 table written out by hand from CONTRACT §4 (v2), so the test does
// not re-derive the answer from the code it checks.
// Rows: from. Columns: to, in the order pending starting running stopping stopped crashed lost.
// A = advance, = = same, S = stale, K = skip.
const TABLE: Record<SessionState, string> = {
  pending: "= A K A A A A",
  starting: "S = A A A A A",
  running: "S S = A A A A",
  stopping: "S S S = A A A",
  stopped: "S S S S = S S",
  crashed: "S S S S S = S",
  lost: "S S S S S S =",
};
const CODE: Record<string, Move> = { A: "advance", "=": "same", S: "stale", K: "skip" };

describe("session state machine", () => {
  const cases = SESSION_STATES.flatMap((from) =>
    TABLE[from].split(" ").map((c, i) => [from, SESSION_STATES[i]!, CODE[c]!] as const),
  );
  test("covers all 49 pairs", () => expect(cases.length).toBe(49));
  test.each(cases)("%s -> %s is %s", (from, to, expected) => {
    expect(classifyMove(from, to)).toBe(expected);
  });
  test("legal predecessors are exactly the advancing rows", () => {
    for (const to of SESSION_STATES) {
      const expected = SESSION_STATES.filter((from) => classifyMove(from, to) === "advance");
      expect(legalPredecessors(to)).toEqual(expected);
    }
    expect(legalPredecessors("lost")).toEqual(["pending", "starting", "running", "stopping"]);
    expect(legalPredecessors("pending")).toEqual([]);
    // A stop before running (addon download cancelled) and a force kill from running.
    expect(legalPredecessors("stopped")).toEqual(["pending", "starting", "running", "stopping"]);
    expect(legalPredecessors("running")).toEqual(["starting"]);
  });
  test("pending -> running is the only forward skip", () => {
    const skips = SESSION_STATES.flatMap((from) => SESSION_STATES.filter((to) => classifyMove(from, to) === "skip").map((to) => `${from}->${to}`));
    expect(skips).toEqual(["pending->running"]);
  });
});
