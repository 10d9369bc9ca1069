import { describe, expect, test } from "bun:test";
import { comparePositions, timeBoundary, type LinePosition } from "../logs/archive/cursor.ts";
import type { ArchivedLine } from "../logs/archive/format.ts";
import { PageTooCostlyError, readPage, type ObjectRef, type PageBounds, type PageSource, type PositionedLine } from "./history-pager.ts";

interface FakeObject extends ObjectRef {
  lines: ArchivedLine[];
}

const BOUNDS: PageBounds = { softObjects: 1000, softBytes: 1e9, hardObjects: 5000, hardBytes: 1e10, concurrency: 3, batch: 4 };

/** The database's two orders over fake objects, and reads that count themselves. */
function source(objects: FakeObject[], forward: boolean, fromMs: number) {
  const reads: number[] = [];
  const order = forward
    ? objects.filter((o) => o.endMs >= fromMs).sort((a, b) => a.startMs - b.startMs || a.logId - b.logId)
    : objects.filter((o) => o.startMs <= fromMs).sort((a, b) => b.endMs - a.endMs || b.logId - a.logId);
  const s: PageSource = {
    objects: async (after, limit) => {
      const from = after ? order.findIndex((o) => o.logId === after.logId) + 1 : 0;
      return order.slice(from, from + limit);
    },
    read: async (o) => {
      reads.push(o.logId);
      const lines = (o as FakeObject).lines;
      return { lines, bytes: lines.length * 10 };
    },
  };
  return { s, reads };
}

/** Every line in the archive's total order, times clamped into their object as the pager does. */
function everything(objects: FakeObject[]): PositionedLine[] {
  return objects
    .flatMap((o) => o.lines.map((l, index) => ({ ...l, timestamp: Math.min(o.endMs, Math.max(o.startMs, l.timestamp)), logId: o.logId, index })))
    .sort(comparePositions);
}

const signal = new AbortController().signal;

async function pageAll(objects: FakeObject[], forward: boolean, limit: number, bounds = BOUNDS): Promise<PositionedLine[][]> {
  const pages: PositionedLine[][] = [];
  let start: LinePosition = timeBoundary(forward ? -1e15 : 1e15);
  for (let guard = 0; guard < 10_000; guard++) {
    const { s } = source(objects, forward, start.timestamp);
    const page = await readPage(s, { start, forward, limit }, bounds, signal);
    pages.push(page.lines);
    if (page.lines.length > 0) start = forward ? page.lines[page.lines.length - 1]! : page.lines[0]!;
    if (!page.hasMore) return pages;
    expect(page.lines.length).toBeGreaterThan(0);
  }
  throw new Error("paging did not end");
}

/** Minutes with first parts, late parts overlapping them, and bursts of 50 lines in one millisecond. */
function archive(): FakeObject[] {
  const objects: FakeObject[] = [];
  let logId = 1;
  const add = (lines: ArchivedLine[]) => {
    const ts = lines.map((l) => l.timestamp);
    objects.push({ logId: logId++, filePath: `o${logId}`, startMs: Math.min(...ts), endMs: Math.max(...ts), lines });
  };
  for (let minute = 0; minute < 6; minute++) {
    const base = minute * 60_000;
    const first: ArchivedLine[] = [];
    for (let i = 0; i < 40; i++) first.push({ timestamp: base + i * 1000, source: "stdout", message: `m${minute} line ${i}` });
    for (let i = 0; i < 50; i++) first.push({ timestamp: base + 45_000, source: "stderr", message: `m${minute} burst ${i}` });
    add(first);
    // A late part: lines between the first part's, and more in the burst's millisecond.
    add([
      { timestamp: base + 500, source: "host", message: `m${minute} late a` },
      { timestamp: base + 45_000, source: "host", message: `m${minute} late burst` },
      { timestamp: base + 59_999, source: "host", message: `m${minute} late z` },
    ]);
  }
  return objects;
}

describe("readPage", () => {
  const objects = archive();
  const all = everything(objects);

  for (const limit of [1, 7, 50, 1000]) {
    test(`pages forwards and backwards with limit ${limit}: every line once, in order`, async () => {
      const fwd = await pageAll(objects, true, limit);
      expect(fwd.flat()).toEqual(all);
      expect(fwd.every((p) => p.length <= limit)).toBe(true);
      const back = await pageAll(objects, false, limit);
      expect(back.reverse().flat()).toEqual(all);
    });
  }

  test("a cursor in the middle of one millisecond's burst goes on exactly there, both ways", async () => {
    const at = all.findIndex((l) => l.message === "m2 burst 17");
    const { s } = source(objects, true, all[at]!.timestamp);
    const fwd = await readPage(s, { start: all[at]!, forward: true, limit: 10 }, BOUNDS, signal);
    expect(fwd.lines).toEqual(all.slice(at + 1, at + 11));
    const back = await readPage(source(objects, false, all[at]!.timestamp).s, { start: all[at]!, forward: false, limit: 10 }, BOUNDS, signal);
    expect(back.lines).toEqual(all.slice(at - 10, at));
  });

  test("stops reading once the page is settled", async () => {
    const { s, reads } = source(objects, true, -1e15);
    const page = await readPage(s, { start: timeBoundary(-1e15), forward: true, limit: 5 }, { ...BOUNDS, concurrency: 1 }, signal);
    expect(page.lines.map((l) => l.message)).toEqual(["m0 line 0", "m0 late a", "m0 line 1", "m0 line 2", "m0 line 3"]);
    // The first part and its late part overlap; the third object starts after the fifth line.
    expect(reads).toEqual([1, 2]);
    expect(page.hasMore).toBe(true);
  });

  test("the soft bound answers with the lines already settled, and paging still sees every line", async () => {
    const bounds = { ...BOUNDS, softObjects: 1, concurrency: 1 };
    const fwd = await pageAll(objects, true, 1000, bounds);
    expect(fwd.length).toBeGreaterThan(1);
    expect(fwd.flat()).toEqual(all);
    expect((await pageAll(objects, false, 1000, bounds)).reverse().flat()).toEqual(all);
  });

  test("past the hard bound with nothing settled the call fails instead of reading on", async () => {
    // Twenty objects spanning the same millisecond range: nothing is settled until all are read.
    const overlapping: FakeObject[] = Array.from({ length: 20 }, (_, i) => ({
      logId: i + 1,
      filePath: `p${i}`,
      startMs: 0,
      endMs: 10,
      lines: [{ timestamp: 10, source: "stdout", message: `x${i}` }],
    }));
    const { s } = source(overlapping, true, 0);
    const bounds = { ...BOUNDS, softObjects: 1, hardObjects: 5 };
    await expect(readPage(s, { start: timeBoundary(0), forward: true, limit: 10 }, bounds, signal)).rejects.toBeInstanceOf(PageTooCostlyError);
  });

  test("an unreadable object is skipped; an empty archive is an empty page", async () => {
    const { s } = source(objects, true, -1e15);
    const skipping: PageSource = { ...s, read: async (o, sig) => (o.logId === 1 ? null : s.read(o, sig)) };
    const page = await readPage(skipping, { start: timeBoundary(-1e15), forward: true, limit: 2 }, BOUNDS, signal);
    expect(page.lines.map((l) => l.message)).toEqual(["m0 late a", "m0 late burst"]);
    const none = await readPage(source([], false, 0).s, { start: timeBoundary(0), forward: false, limit: 10 }, BOUNDS, signal);
    expect(none).toMatchObject({ lines: [], hasMore: false });
  });

  test("a line whose time lies outside its row (upstream's whole seconds) is kept inside it", async () => {
    const o: FakeObject = { logId: 3, filePath: "u", startMs: 5300, endMs: 9800, lines: [{ timestamp: 5000, source: "host", message: "a" }, { timestamp: 9000, source: "host", message: "b" }] };
    const page = await readPage(source([o], true, 0).s, { start: timeBoundary(0), forward: true, limit: 10 }, BOUNDS, signal);
    expect(page.lines.map((l) => l.timestamp)).toEqual([5300, 9000]);
  });
});
