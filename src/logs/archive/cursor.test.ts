import { describe, expect, test } from "bun:test";
import { comparePositions, decodeCursor, encodeCursor, timeBoundary, type LinePosition } from "./cursor.ts";

describe("cursors", () => {
  test("round-trip through an opaque url-safe token", () => {
    for (const p of [
      { timestamp: 1_764_000_000_123, logId: 42, index: 17 },
      { timestamp: -5, logId: 0, index: 0 },
      { timestamp: 0, logId: Number.MAX_SAFE_INTEGER, index: 999_999 },
    ]) {
      const c = encodeCursor(p);
      expect(c).toMatch(/^[A-Za-z0-9_-]+$/);
      expect(decodeCursor(c)).toEqual(p);
    }
  });

  test("anything else is refused", () => {
    for (const c of ["", "x", "!!!", btoa("v2.1.2.3"), btoa("v1.1.2"), btoa("v1.1.2.3.4"), btoa("v1.a.2.3"), "A".repeat(500)]) expect(decodeCursor(c)).toBeNull();
  });

  test("order lines by time, then object, then place in the object", () => {
    const ps: LinePosition[] = [
      { timestamp: 10, logId: 2, index: 0 },
      { timestamp: 10, logId: 1, index: 5 },
      { timestamp: 9, logId: 9, index: 9 },
      { timestamp: 10, logId: 1, index: 4 },
      timeBoundary(10),
    ];
    expect(ps.sort(comparePositions)).toEqual([
      { timestamp: 9, logId: 9, index: 9 },
      timeBoundary(10),
      { timestamp: 10, logId: 1, index: 4 },
      { timestamp: 10, logId: 1, index: 5 },
      { timestamp: 10, logId: 2, index: 0 },
    ]);
  });

  test("paging a millisecond shared by many lines is exact both ways", () => {
    // 3 objects, 1000 lines all at one millisecond, plus neighbours.
    const all: LinePosition[] = [{ timestamp: 99, logId: 1, index: 0 }];
    for (let logId = 1; logId <= 3; logId++) for (let index = 1; index <= 333; index++) all.push({ timestamp: 100, logId, index });
    all.push({ timestamp: 101, logId: 3, index: 0 });
    all.sort(comparePositions);
    const page = (cursor: string | null, forward: boolean, limit: number) => {
      const at = cursor ? decodeCursor(cursor)! : null;
      const rest = all.filter((p) => !at || (forward ? comparePositions(p, at) > 0 : comparePositions(p, at) < 0));
      const lines = forward ? rest.slice(0, limit) : rest.slice(-limit);
      const edge = forward ? lines[lines.length - 1] : lines[0];
      return { lines, next: edge ? encodeCursor(edge) : cursor };
    };
    for (const forward of [true, false]) {
      const got: LinePosition[] = [];
      let cursor: string | null = null;
      for (;;) {
        const p = page(cursor, forward, 7);
        if (p.lines.length === 0) break;
        if (forward) got.push(...p.lines);
        else got.unshift(...p.lines);
        cursor = p.next;
      }
      expect(got).toEqual(all);
    }
  });
});
