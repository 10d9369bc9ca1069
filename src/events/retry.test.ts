import { describe, expect, test } from "bun:test";
import { CONNECTION_LOSS_RETRIES, decideEarly, decideRetry, type Failure } from "./retry.ts";

// Full jitter between half and all of the ceiling: 1 picks the ceiling, 0 its half.
const top = () => 1;
const bottom = () => 0;
const failure = (f: Partial<Failure>): Failure => ({ kind: "statement_failed", error: "boom", attempts: 1, connectionLosses: 0, ...f });

describe("deciding what a failed try leads to", () => {
  test("values the database refuses are dead-lettered at once, whatever the count", () => {
    expect(decideRetry(failure({ kind: "bad_values", error: "value out of range" }), 5)).toEqual({ kind: "dead_letter", reason: "database refused the values: value out of range" });
  });

  test("an unexplained failure first asks the database; an outage once over runs again at once, uncounted", () => {
    expect(decideRetry(failure({ kind: "unexplained" }), 5)).toEqual({ kind: "wait_for_database" });
    expect(decideRetry(failure({ kind: "outage_over", attempts: 99 }), 5)).toEqual({ kind: "run_again", afterMs: 0, cause: "outage" });
  });

  test("a lost connection runs again after 20 ms doubling to 1 s, uncounted, a bounded number of times", () => {
    expect(decideRetry(failure({ kind: "connection_lost", connectionLosses: 0 }), 5, top)).toEqual({ kind: "run_again", afterMs: 20, cause: "connection_lost" });
    expect(decideRetry(failure({ kind: "connection_lost", connectionLosses: 2 }), 5, top)).toEqual({ kind: "run_again", afterMs: 80, cause: "connection_lost" });
    expect(decideRetry(failure({ kind: "connection_lost", connectionLosses: 8 }), 5, top)).toEqual({ kind: "run_again", afterMs: 1000, cause: "connection_lost" });
    // Past the bound it is counted like any failed statement.
    const spent = failure({ kind: "connection_lost", connectionLosses: CONNECTION_LOSS_RETRIES, attempts: 2 });
    expect(decideRetry(spent, 5, top)).toEqual({ kind: "retry", afterMs: 200 });
    expect(decideRetry({ ...spent, attempts: 6 }, 5)).toEqual({ kind: "dead_letter", reason: "failed 6 times: boom" });
  });

  test("a failed statement retries after 100 ms doubling to 5 s with jitter, and is dead-lettered past MAX_RETRIES", () => {
    expect(decideRetry(failure({ attempts: 1 }), 5, top)).toEqual({ kind: "retry", afterMs: 100 });
    expect(decideRetry(failure({ attempts: 1 }), 5, bottom)).toEqual({ kind: "retry", afterMs: 50 });
    expect(decideRetry(failure({ attempts: 5 }), 5, top)).toEqual({ kind: "retry", afterMs: 1600 });
    expect(decideRetry(failure({ attempts: 9 }), 10, top)).toEqual({ kind: "retry", afterMs: 5000 });
    expect(decideRetry(failure({ attempts: 6, error: "canceling statement due to statement timeout" }), 5)).toEqual({
      kind: "dead_letter",
      reason: "failed 6 times: canceling statement due to statement timeout",
    });
    expect(decideRetry(failure({ attempts: 1 }), 0)).toEqual({ kind: "dead_letter", reason: "failed 1 times: boom" });
  });
});

describe("deciding what an early message leads to", () => {
  const detail = "transition pending -> running skips starting";
  test("tried again after 100 ms doubling to 1 s while its window lasts, never past the window", () => {
    expect(decideEarly({ since: 0, tries: 0 }, 0, 5000, detail, top)).toEqual({ kind: "retry", afterMs: 100 });
    expect(decideEarly({ since: 0, tries: 3 }, 700, 5000, detail, top)).toEqual({ kind: "retry", afterMs: 800 });
    expect(decideEarly({ since: 0, tries: 9 }, 4000, 5000, detail, top)).toEqual({ kind: "retry", afterMs: 1000 });
    expect(decideEarly({ since: 0, tries: 9 }, 10, 300, detail, top)).toEqual({ kind: "retry", afterMs: 300 });
  });
  test("once the window has passed it is dead-lettered, saying how long it waited and how often it was tried", () => {
    expect(decideEarly({ since: 1000, tries: 7 }, 6234, 5000, detail)).toEqual({
      kind: "dead_letter",
      reason: "transition pending -> running skips starting: its predecessor did not arrive within 5.2 s (7 tries)",
    });
  });
});
