import { describe, expect, test } from "bun:test";
import { RETRY_CAP_MS, StreamCursor, retryDelay } from "./resume.ts";

describe("StreamCursor", () => {
  test("resumes after the last line seen and drops duplicates", () => {
    const c = new StreamCursor();
    expect(c.resume("a")).toEqual({ after: 0, restarted: false });
    expect(c.accept(5)).toEqual({ kind: "new", missing: 0, renumbered: false });
    expect(c.accept(6)).toEqual({ kind: "new", missing: 0, renumbered: false });
    expect(c.resume("a")).toEqual({ after: 6, restarted: false });
    expect(c.accept(7)).toEqual({ kind: "new", missing: 0, renumbered: false });
    expect(c.accept(7)).toEqual({ kind: "duplicate" });
    expect(c.accept(3)).toEqual({ kind: "duplicate" });
  });

  test("reports lines that fell out of the buffer while disconnected", () => {
    const c = new StreamCursor();
    c.resume("a");
    c.accept(1);
    c.resume("a");
    expect(c.accept(10)).toEqual({ kind: "new", missing: 8, renumbered: false });
  });

  test("starts from 0 when the server process changed", () => {
    const c = new StreamCursor();
    c.resume("a");
    c.accept(50);
    expect(c.resume("b")).toEqual({ after: 0, restarted: true });
    expect(c.accept(1)).toEqual({ kind: "new", missing: 0, renumbered: false });
    // An unknown instance (the lookup failed) keeps the old assumption.
    expect(c.resume(undefined)).toEqual({ after: 1, restarted: false });
  });

  test("a resumed stream that starts at or below the number asked for is a new numbering, not duplicates", () => {
    const c = new StreamCursor();
    c.resume("a");
    c.accept(1);
    c.accept(2);
    c.accept(3);
    expect(c.resume("a")).toEqual({ after: 3, restarted: false });
    expect(c.accept(1)).toEqual({ kind: "new", missing: 0, renumbered: true });
    expect(c.accept(2)).toEqual({ kind: "new", missing: 0, renumbered: false });
    expect(c.accept(2)).toEqual({ kind: "duplicate" });
  });
});

test("retry delays grow and stay under the cap", () => {
  expect(retryDelay(1, () => 1)).toBe(500);
  expect(retryDelay(2, () => 1)).toBe(1000);
  expect(retryDelay(30, () => 1)).toBe(RETRY_CAP_MS);
  expect(retryDelay(1, () => 0)).toBe(250);
});
