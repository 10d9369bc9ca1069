import { describe, expect, test } from "bun:test";
import { SessionBook, UNKNOWN_SESSION_WAIT_MS } from "./sessions.ts";

describe("SessionBook", () => {
  test("a found session is known; an ended one is no longer asked about", () => {
    const b = new SessionBook();
    b.found(1, { sgcId: 10, ended: false });
    b.found(2, { sgcId: 20, ended: true });
    expect(b.lookup(1, 0)).toEqual({ kind: "known", fact: { sgcId: 10, ended: false } });
    expect(b.toAsk([1, 2, 3])).toEqual([1, 3]);
    expect(b.ended([1, 2, 3])).toEqual([2]);
  });

  test("a missing session is waited for, then dropped; found in time, it is known", () => {
    const b = new SessionBook();
    expect(b.lookup(7, 0)).toEqual({ kind: "wait" });
    b.missing(7, 1000);
    b.missing(7, 5000); // the first time counts
    expect(b.lookup(7, 1000 + UNKNOWN_SESSION_WAIT_MS - 1)).toEqual({ kind: "wait" });
    expect(b.lookup(7, 1000 + UNKNOWN_SESSION_WAIT_MS)).toEqual({ kind: "drop", missingForMs: UNKNOWN_SESSION_WAIT_MS });
    b.found(7, { sgcId: 1, ended: false });
    expect(b.lookup(7, 1e9).kind).toBe("known");
  });

  test("a session that disappears (deleted) starts its wait then", () => {
    const b = new SessionBook();
    b.found(3, { sgcId: 1, ended: false });
    b.missing(3, 100);
    expect(b.lookup(3, 100)).toEqual({ kind: "wait" });
    expect(b.lookup(3, 100 + UNKNOWN_SESSION_WAIT_MS).kind).toBe("drop");
  });

  test("bounded: the least recently used are forgotten first", () => {
    const b = new SessionBook(2);
    b.found(1, { sgcId: 1, ended: true });
    b.found(2, { sgcId: 2, ended: true });
    b.found(1, { sgcId: 1, ended: true }); // used again
    b.found(3, { sgcId: 3, ended: true });
    expect([b.get(1)?.sgcId, b.get(2), b.get(3)?.sgcId]).toEqual([1, undefined, 3]);
  });
});
