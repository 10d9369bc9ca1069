import { expect, test } from "bun:test";
import { lineBytes } from "./line.ts";
import { SessionRing } from "./ring.ts";

test("numbers lines from 1, keeps their bytes, and drops the oldest first", () => {
  const r = new SessionRing(7, 3);
  const lines = ["a", "bb", "ccc", "dddd"].map((m, i) => {
    if (r.size >= 3) r.dropOldest();
    return r.push(i, "stdout", m);
  });
  expect(lines.map((l) => [l.sessionId, l.seq])).toEqual([[7, 1], [7, 2], [7, 3], [7, 4]]);
  expect(r.size).toBe(3);
  expect(r.bytes).toBe(lines.slice(1).reduce((n, l) => n + lineBytes(l), 0));
  expect(r.after(0).map((l) => l.message)).toEqual(["bb", "ccc", "dddd"]);
  expect(r.after(3).map((l) => l.seq)).toEqual([4]);
  expect(r.after(4)).toEqual([]);
  // From an earlier life of the buffer: everything, duplicates rather than a gap.
  expect(r.after(99).map((l) => l.seq)).toEqual([2, 3, 4]);
  expect([r.dropOldest()?.seq, r.dropOldest()?.seq, r.dropOldest()?.seq, r.dropOldest()]).toEqual([2, 3, 4, undefined]);
  expect([r.first, r.next]).toEqual([5, 5]);
  expect([r.size, r.bytes]).toEqual([0, 0]);
});
