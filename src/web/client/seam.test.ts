import { describe, expect, test } from "bun:test";
import { Seam, joinAtSeam, type SeamLine } from "./seam.ts";

const l = (timestamp: number, message: string, source = "stdout"): SeamLine => ({ timestamp, source, message });
const texts = (lines: readonly SeamLine[]) => lines.map((x) => `${x.timestamp} ${x.message}`);

/** A session: some lines, then a host flushing 50 distinct lines in one ms, then more. */
function session(): SeamLine[] {
  const out: SeamLine[] = [];
  for (let i = 0; i < 100; i++) out.push(l(1000 + i, `early ${i}`));
  for (let i = 0; i < 50; i++) out.push(l(2000, `burst ${i}`));
  for (let i = 0; i < 30; i++) out.push(l(3000 + i, `late ${i}`));
  return out;
}

describe("joinAtSeam: archive (behind) + ring (the newest lines) = the session, once", () => {
  const all = session();
  // The ring's first line anywhere (in the burst included) and the archive's end anywhere at or after it.
  for (const ringStart of [0, 60, 100, 101, 130, 149, 150, 170]) {
    for (const archiveEnd of [ringStart, ringStart + 1, 125, 150, 160, all.length]) {
      if (archiveEnd < ringStart || archiveEnd > all.length) continue;
      test(`ring from line ${ringStart}, archive up to line ${archiveEnd}`, () => {
        expect(texts(joinAtSeam(all.slice(0, archiveEnd), all.slice(ringStart)))).toEqual(texts(all));
      });
    }
  }
});

test("identical lines in one millisecond: as many as the side holding more", () => {
  const ticks = Array.from({ length: 5 }, () => l(5, "tick"));
  // The archive has all five, the ring the last two: five.
  expect(joinAtSeam(ticks, ticks.slice(3))).toHaveLength(5);
  // The ring has all five (the archive not yet): five.
  expect(joinAtSeam(ticks.slice(0, 2), ticks)).toHaveLength(5);
  // The known limitation: each side holds a different copy, neither all: one instead of two.
  expect(joinAtSeam([l(5, "tick")], [l(5, "tick")])).toHaveLength(1);
  // Same time and text from another source is another line.
  expect(joinAtSeam([l(5, "tick", "stderr")], [l(5, "tick")])).toHaveLength(2);
});

test("reached: a line at or after T0; nothing before the first live line", () => {
  const s = new Seam();
  expect(s.reached(l(1, "a"))).toBe(false);
  s.acceptLive(l(10, "x"));
  expect([9, 10, 11].map((t) => s.reached(l(t, "b")))).toEqual([false, true, true]);
  expect(s.filterArchived([l(9, "c"), l(10, "x"), l(11, "y")]).map((x) => x.message)).toEqual(["c"]);
});

test("after forgetting the archived lines at T0, reading them again shows them once more, and hides their live copies still", () => {
  const s = new Seam();
  s.acceptLive(l(10, "x"));
  expect(s.filterArchived([l(10, "y")])).toHaveLength(1); // shown from the archive
  expect(s.acceptLive(l(10, "y"))).toBe(false); // its live copy hidden
  s.forgetArchived(); // the archived "y" left the page
  expect(s.filterArchived([l(10, "x"), l(10, "y")]).map((x) => x.message)).toEqual(["y"]);
  s.forgetArchived(); // and once more: still each line once
  expect(s.filterArchived([l(10, "x"), l(10, "y")]).map((x) => x.message)).toEqual(["y"]);
  expect(s.acceptLive(l(10, "x"))).toBe(true); // a second live "x": the archive showed none
});

test("matching across pages: archived, live, archived copies of one line interleave to the larger count", () => {
  const s = new Seam();
  s.acceptLive(l(5, "first")); // T0 = 5
  const shown = [...s.filterArchived([l(5, "t")])];
  const live = [l(5, "t"), l(5, "t")].filter((x) => s.acceptLive(x));
  shown.push(...s.filterArchived([l(5, "t"), l(5, "t")]));
  expect(shown.length + live.length).toBe(3);
});
