/**
 * The hub's memory bound holds whatever clients do: streams for sessions
 * without a buffer make none, and lines only streams still hold (pinned)
 * count against LOG_BUFFER_MAX_BYTES.
 */
import { expect, test } from "bun:test";
import { createLogHub, type LogHubOptions } from "./hub.ts";
import { lineBytes, type LogLine } from "./line.ts";
import { LogStreamLagged, type LogSubscription } from "./subscriber.ts";

function hub(over: Partial<LogHubOptions> = {}) {
  let t = 1_000_000;
  const clock = { now: () => t };
  const h = createLogHub({ maxLines: 5, ttlMs: 60_000, maxBytes: 1 << 20, maxPendingBytes: 1 << 20, clock, ...over });
  return { h, advance: (ms: number) => void (t += ms) };
}
const line = (sessionId: number, message: string) => ({ sessionId, timestamp: 1, source: "stdout", message });
const seqs = (ls: LogLine[]) => ls.map((l) => l.seq);

async function drain(sub: LogSubscription, n: number): Promise<LogLine[]> {
  const out: LogLine[] = [];
  while (out.length < n) out.push(...(await sub.nextBatch(n - out.length)));
  return out;
}

test("10,000 streams for made-up sessions create no buffer; they wait and cost nothing in the bound", () => {
  const { h } = hub();
  const subs = Array.from({ length: 10_000 }, (_, i) => h.subscribe(1_000_000 + i, 0));
  expect(h.stats()).toEqual({ sessions: 0, lines: 0, bytes: 0, pinnedBytes: 0, subscribers: 10_000, waiting: 10_000 });
  expect(h.subscriberCount(1_000_000)).toBe(1);
  for (const s of subs) s.close();
  expect(h.stats()).toEqual({ sessions: 0, lines: 0, bytes: 0, pinnedBytes: 0, subscribers: 0, waiting: 0 });
});

test("a waiting stream gets the session's lines from 1 once its first line arrives", async () => {
  const { h } = hub();
  const sub = h.subscribe(7, 42);
  h.append(line(7, "first"));
  h.append(line(7, "second"));
  expect(h.stats()).toMatchObject({ sessions: 1, waiting: 0, subscribers: 1 });
  expect(seqs(await drain(sub, 2))).toEqual([1, 2]);
});

test("a stream for an expired session waits too: the old buffer is forgotten, not kept alive", async () => {
  const { h, advance } = hub();
  h.append(line(7, "old"));
  advance(60_000);
  const sub = h.subscribe(7, 1);
  expect(h.stats()).toMatchObject({ sessions: 0, waiting: 1, bytes: 0 });
  h.append(line(7, "new"));
  expect((await drain(sub, 1)).map((l) => [l.seq, l.message])).toEqual([[2, "new"]]);
});

test("lines the ring dropped while a stream still holds them count as pinned until it sends them or leaves", async () => {
  const { h } = hub({ maxLines: 5 });
  const slow = h.subscribe(1, 0);
  const sent: LogLine[] = [];
  for (let i = 1; i <= 20; i++) sent.push(h.append(line(1, `l${i}`)));
  const pinned = sent.slice(0, 15).reduce((n, l) => n + lineBytes(l), 0);
  expect(h.stats().pinnedBytes).toBe(pinned);
  expect(seqs(await drain(slow, 20))).toEqual(sent.map((l) => l.seq));
  h.sweep(); // trims; so does the next drop or a stream leaving
  expect(h.stats().pinnedBytes).toBe(0);
  for (let i = 21; i <= 30; i++) h.append(line(1, `l${i}`));
  expect(h.stats().pinnedBytes).toBeGreaterThan(0);
  slow.close();
  expect(h.stats().pinnedBytes).toBe(0);
});

test("pinned lines take at most half the bound: the stream furthest behind ends with LogStreamLagged, the others go on", async () => {
  const text = "x".repeat(1000); // ~2,100 estimated bytes a line
  const { h } = hub({ maxLines: 10, maxBytes: 200_000 });
  const stalled = h.subscribe(1, 0);
  const lessBehind = h.subscribe(1, 0);
  const keepingUp = h.subscribe(1, 0);
  let read = 0;
  for (let i = 1; i <= 60; i++) {
    h.append(line(1, text));
    if (i === 20) await drain(lessBehind, 20);
    read += (await keepingUp.nextBatch(100)).length;
    const st = h.stats();
    expect(st.pinnedBytes).toBeLessThanOrEqual(100_000);
    expect(st.bytes + st.pinnedBytes).toBeLessThanOrEqual(200_000);
  }
  expect(read).toBe(60);
  const err = await stalled.nextBatch(1).catch((e) => e);
  expect(err).toBeInstanceOf(LogStreamLagged);
  expect(err.message).toContain("furthest behind");
  expect(err.lastDelivered).toBe(0);
  expect(h.subscriberCount(1)).toBe(2);
});

test("hundreds of stalled streams on busy sessions never take the buffers past the bound", () => {
  const { h } = hub({ maxLines: 50, maxBytes: 1_000_000, maxPendingBytes: 1 << 20 });
  const stalled = Array.from({ length: 300 }, (_, i) => h.subscribe(1 + (i % 30), 0));
  const text = "y".repeat(400);
  let worst = 0;
  for (let i = 0; i < 6000; i++) {
    h.append(line(1 + (i % 30), text));
    const st = h.stats();
    worst = Math.max(worst, st.bytes + st.pinnedBytes);
  }
  expect(worst).toBeLessThanOrEqual(1_000_000);
  // Some were ended to stay inside; the buffers still hold lines for everyone else.
  expect(h.subscriberCount()).toBeLessThan(300);
  expect(h.stats().lines).toBeGreaterThan(0);
  for (const s of stalled) s.close();
  expect(h.stats().pinnedBytes).toBe(0);
});
