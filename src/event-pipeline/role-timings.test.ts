import { expect, test } from "bun:test";
import { roleTimings } from "./role-timings.ts";

test("at the default 5 s: checks every 0.5 s, a 1 s heartbeat (given up by the client after 2 s), the database given 2.5 s", () => {
  expect(roleTimings(5)).toEqual({ checkMs: 500, heartbeatSeconds: 1, heartbeatTimeoutMs: 2000, giveUpMs: 2500 });
});

test("every way of dying fits the budget: a silent holder (3 heartbeats + a check) and a lost database (give-up + a check)", () => {
  for (const budget of [4, 5, 10, 30, 60, 600]) {
    const t = roleTimings(budget);
    expect(3 * t.heartbeatSeconds * 1000 + t.checkMs).toBeLessThanOrEqual(budget * 1000);
    expect(t.giveUpMs + 2 * t.checkMs).toBeLessThanOrEqual(budget * 1000);
    expect(t.heartbeatSeconds).toBeGreaterThanOrEqual(1);
    expect(Number.isInteger(t.heartbeatSeconds)).toBe(true);
  }
});
