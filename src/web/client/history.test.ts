import { describe, expect, test } from "bun:test";
import { History, PAGE_LINES, type HistoryPage, type HistoryRead } from "./history.ts";
import { LineStore } from "./lines.ts";
import type { SeamLine } from "./seam.ts";

/**
 * A fake archive with the service's cursor rules: a cursor is the position
 * of a line (here its index; a time is the half-index before the first line
 * at that time); FORWARD reads after it, BACKWARD before it, oldest first.
 */
function fakeArchive(lines: SeamLine[]) {
  let reads = 0;
  const read = async ({ cursor, fromTimestamp, backward, limit }: HistoryRead): Promise<HistoryPage> => {
    reads++;
    let at: number;
    if (cursor !== undefined) at = Number(cursor);
    else if (fromTimestamp !== undefined) {
      const i = lines.findIndex((l) => l.timestamp >= fromTimestamp);
      at = (i < 0 ? lines.length : i) - 0.5;
    } else at = backward ? lines.length + 1e9 : -0.5;
    const idx = backward
      ? lines.map((_, i) => i).filter((i) => i < at).slice(-limit)
      : lines.map((_, i) => i).filter((i) => i > at).slice(0, limit);
    const first = idx[0];
    const last = idx[idx.length - 1];
    const more = backward ? first !== undefined && first > 0 : last !== undefined && last < lines.length - 1;
    const here = String(at);
    return {
      lines: idx.map((i) => lines[i]!),
      nextCursor: first === undefined ? here : String(backward ? first : last),
      prevCursor: first === undefined ? here : String(backward ? last : first),
      hasMore: idx.length === 0 ? false : more,
    };
  };
  return { read, reads: () => reads };
}

/** `n` lines a second apart from t, with a 50-line burst in one millisecond at `burstAt`. */
function session(n: number, burstAt = -1): SeamLine[] {
  const out: SeamLine[] = [];
  for (let i = 0; i < n; i++) {
    if (i === burstAt) for (let j = 0; j < 50; j++) out.push({ timestamp: 1_000_000 + i * 1000, source: "stdout", message: `burst ${j}` });
    else out.push({ timestamp: 1_000_000 + i * 1000, source: i % 7 ? "stdout" : "stderr", message: `line ${i}` });
  }
  return out;
}

const shownTexts = (store: LineStore) => Array.from(store.shown(), (l) => `${l.timestamp} ${l.source} ${l.message}`);
const texts = (lines: SeamLine[]) => lines.map((l) => `${l.timestamp} ${l.source} ${l.message}`);

/** What the page does with the live stream: the history decides, the store keeps. */
function liveLine(store: LineStore, history: History, l: SeamLine, seq: number): void {
  if (history.live(l)) store.add({ seq, timestamp: l.timestamp, source: l.source, message: l.message });
}

async function loadAllOlder(history: History): Promise<void> {
  while (await history.loadOlder());
}

test("a finished session: the newest page first, then older pages, every line once in order", async () => {
  const all = session(2500);
  const store = new LineStore(200_000);
  const h = new History(store, fakeArchive(all).read);
  expect(await h.start()).toBe(true);
  expect(store.shownCount).toBe(PAGE_LINES);
  expect(store.shownAt(store.shownCount - 1).message).toBe("line 2499");
  await loadAllOlder(h);
  expect(h.atStart).toBe(true);
  expect(shownTexts(store)).toEqual(texts(all));
  expect(h.behindLive).toBe(false);
});

describe("a live session: history then the ring, joined without duplicates or gaps", () => {
  // 1249 lines with a 50-line burst from index 720; the ring holds the last 500 (from index 749, inside the burst).
  const all = session(1200, 720);
  const ring = all.slice(all.length - 500);
  for (const archived of [all.length - 500, all.length - 490, all.length - 400, all.length]) {
    for (const order of ["live first", "history first"] as const) {
      test(`archive up to line ${archived}, ${order}`, async () => {
        const store = new LineStore(200_000);
        const h = new History(store, fakeArchive(all.slice(0, archived)).read);
        if (order === "live first") ring.forEach((l, i) => liveLine(store, h, l, i + 1));
        await h.start();
        if (order === "history first") ring.forEach((l, i) => liveLine(store, h, l, i + 1));
        await loadAllOlder(h);
        expect(shownTexts(store)).toEqual(texts(all));
        // Until the archive holds a line at or after the ring's first, the page cannot know it has all before it.
        expect(h.edge).toBe(all.slice(0, archived).some((l) => l.timestamp >= ring[0]!.timestamp) ? "live" : "archive-end");
      });
    }
  }
});

test("the archive behind the ring: the page polls until it catches up, then the gap is filled", async () => {
  const all = session(3000);
  const ring = all.slice(2500);
  const archived = all.slice(0, 1800); // the archive is a minute or two behind
  const fake = fakeArchive(archived);
  const store = new LineStore(200_000);
  const h = new History(store, fake.read);
  await h.start();
  ring.forEach((l, i) => liveLine(store, h, l, i + 1));
  expect(h.behindLive).toBe(true);
  expect(await h.loadNewer()).toBe(false); // nothing new archived yet
  expect(h.behindLive).toBe(true);
  archived.push(...all.slice(1800, 2600)); // the archive writes the next minutes
  while (h.behindLive) await h.loadNewer();
  await loadAllOlder(h);
  expect(shownTexts(store)).toEqual(texts(all));
});

test("a page that ends inside T0's millisecond: the next one is read too, so no line of the burst is lost", async () => {
  const all = session(2471, 1990); // a 50-line burst at indexes 1990-2039, 2520 lines in all
  const ring = all.slice(2020); // the ring starts inside the burst
  const archived = all.slice(0, 996);
  const store = new LineStore(200_000);
  const h = new History(store, fakeArchive(archived).read);
  await h.start();
  ring.forEach((l, i) => liveLine(store, h, l, i + 1));
  archived.push(...all.slice(996)); // caught up: the next read (996-1995) ends inside the burst
  while (h.behindLive) await h.loadNewer();
  await loadAllOlder(h);
  expect(shownTexts(store)).toEqual(texts(all));
});

test("a jump outside the kept lines replaces them with the lines around the time; both edges read on", async () => {
  const all = session(5000);
  const store = new LineStore(200_000);
  const h = new History(store, fakeArchive(all).read);
  await h.start();
  const target = all[1234]!.timestamp;
  const index = await h.jump(target);
  expect(store.shownAt(index).message).toBe("line 1234");
  expect(store.olderCount).toBe(200 + PAGE_LINES);
  expect(h.edge).toBe("open");
  expect(await h.jump(all[1500]!.timestamp)).toBe(200 + 266); // inside the kept lines: no read
  while (h.edge !== "archive-end") await h.loadNewer();
  await loadAllOlder(h);
  expect(shownTexts(store)).toEqual(texts(all));
});

test("a jump back into a live session's archive, then reading down again meets the live lines once", async () => {
  const all = session(4000, 3600);
  const ring = all.slice(all.length - 500);
  const store = new LineStore(200_000);
  const h = new History(store, fakeArchive(all.slice(0, all.length - 300)).read);
  await h.start();
  ring.forEach((l, i) => liveLine(store, h, l, i + 1));
  await h.jump(all[100]!.timestamp);
  expect(h.behindLive).toBe(false); // after a jump the gap is read on demand
  while (h.edge !== "live") await h.loadNewer();
  await loadAllOlder(h);
  expect(shownTexts(store)).toEqual(texts(all));
});

test("no reads past the store's cap", async () => {
  const all = session(5000);
  const fake = fakeArchive(all);
  const store = new LineStore(2500);
  const h = new History(store, fake.read);
  await h.start();
  await loadAllOlder(h);
  expect(store.size).toBeLessThanOrEqual(2500);
  expect(h.atStart).toBe(false);
  expect(await h.loadOlder()).toBe(false);
});
