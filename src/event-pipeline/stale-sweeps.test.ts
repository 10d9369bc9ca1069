import { expect, test } from "bun:test";
import { sweepsDue } from "./stale-sweeps.ts";

test("after a start each sweep waits one threshold, so queued keepalives and heartbeats are applied first", () => {
  const options = { hostThresholdSeconds: 10, sessionThresholdSeconds: 30, intervalSeconds: 1 };
  expect(sweepsDue(options, 0)).toEqual({ hosts: false, sessions: false });
  expect(sweepsDue(options, 10_000)).toEqual({ hosts: true, sessions: false });
  expect(sweepsDue(options, 30_000)).toEqual({ hosts: true, sessions: true });
});
