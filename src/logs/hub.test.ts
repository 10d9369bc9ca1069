import { describe, expect, test } from "bun:test";
import { createLogHub, type LogHubOptions } from "./hub.ts";
import type { LogLine } from "./line.ts";
import { LogStreamLagged, type LogSubscription } from "./subscriber.ts";

function fakeClock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

function hub(over: Partial<LogHubOptions> = {}) {
  const clock = fakeClock();
  const h = createLogHub({ maxLines: 5, ttlMs: 60_000, maxBytes: 1 << 20, maxPendingBytes: 1 << 20, clock, ...over });
  return { h, clock };
}

const line = (sessionId: number, message: string) => ({ sessionId, timestamp: 1, source: "stdout", message });

/** Pulls what is buffered right now without waiting for live lines. */
async function drain(sub: LogSubscription, n: number): Promise<LogLine[]> {
  const out: LogLine[] = [];
  for (let i = 0; i < n; i++) out.push((await sub.next()).value as LogLine);
  return out;
}

describe("sequence numbers", () => {
  test("start at 1 and rise by one per line of a session", () => {
    const { h } = hub();
    expect([h.append(line(1, "a")).seq, h.append(line(1, "b")).seq, h.append(line(2, "x")).seq, h.append(line(1, "c")).seq]).toEqual([1, 2, 1, 3]);
  });

  test("keep counting past the ring size", () => {
    const { h } = hub();
    for (let i = 0; i < 12; i++) h.append(line(1, `l${i}`));
    expect(h.append(line(1, "last")).seq).toBe(13);
  });

  test("go on where they stopped once a session's buffer has expired", () => {
    const { h, clock } = hub();
    h.append(line(1, "a"));
    h.append(line(1, "b"));
    clock.advance(60_000);
    expect(h.append(line(1, "c")).seq).toBe(3);
  });

  test("a client resuming with its last number after a long quiet gets every new line, even when they outnumber it", async () => {
    const { h, clock } = hub({ maxLines: 50 });
    for (let i = 1; i <= 3; i++) h.append(line(1, `old${i}`));
    clock.advance(60_000);
    h.sweep();
    for (let i = 1; i <= 5; i++) h.append(line(1, `new${i}`));
    const got = await drain(h.subscribe(1, 3), 5);
    expect(got.map((l) => [l.seq, l.message])).toEqual([4, 5, 6, 7, 8].map((seq, i) => [seq, `new${i + 1}`]));
  });

  test("only the last rememberedSessions forgotten sessions are remembered; an older one starts again at 1", () => {
    const { h, clock } = hub({ rememberedSessions: 2 });
    for (const id of [1, 2, 3]) h.append(line(id, "a"));
    clock.advance(60_000);
    h.sweep();
    expect([1, 2, 3].map((id) => h.append(line(id, "b")).seq)).toEqual([1, 2, 2]);
  });
});

describe("backlog", () => {
  test("a late subscriber gets the last maxLines lines in order", async () => {
    const { h } = hub();
    for (let i = 1; i <= 8; i++) h.append(line(1, `l${i}`));
    const got = await drain(h.subscribe(1, 0), 5);
    expect(got.map((l) => l.seq)).toEqual([4, 5, 6, 7, 8]);
    expect(got.map((l) => l.message)).toEqual(["l4", "l5", "l6", "l7", "l8"]);
  });

  test("after a sequence number only newer lines come", async () => {
    const { h } = hub();
    for (let i = 1; i <= 4; i++) h.append(line(1, `l${i}`));
    const sub = h.subscribe(1, 2);
    expect((await drain(sub, 2)).map((l) => l.seq)).toEqual([3, 4]);
    h.append(line(1, "l5"));
    expect((await sub.next()).value.seq).toBe(5);
  });

  test("a number beyond the newest line (an earlier life of the buffer) gets the whole buffer", async () => {
    const { h } = hub();
    for (let i = 1; i <= 3; i++) h.append(line(1, `l${i}`));
    expect((await drain(h.subscribe(1, 700), 3)).map((l) => l.seq)).toEqual([1, 2, 3]);
  });

  test("a number older than the buffer starts at the oldest buffered line", async () => {
    const { h } = hub();
    for (let i = 1; i <= 9; i++) h.append(line(1, `l${i}`));
    expect((await h.subscribe(1, 1).next()).value.seq).toBe(5);
  });
});

describe("live lines", () => {
  test("wake a waiting subscriber; sessions are isolated", async () => {
    const { h } = hub();
    const sub = h.subscribe(1, 0);
    const pending = sub.next();
    h.append(line(2, "other"));
    h.append(line(1, "mine"));
    expect((await pending).value).toMatchObject({ sessionId: 1, seq: 1, message: "mine" });
  });

  test("many subscribers share lines and each gets all of them in order", async () => {
    const { h } = hub({ maxLines: 100 });
    const subs = Array.from({ length: 20 }, () => h.subscribe(1, 0));
    for (let i = 1; i <= 50; i++) h.append(line(1, `l${i}`));
    for (const s of subs) expect((await drain(s, 50)).map((l) => l.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(h.stats().lines).toBe(50);
  });
});

describe("slow and cancelled subscribers", () => {
  test("a subscriber with too much waiting fails with LogStreamLagged at once; others go on", async () => {
    // Room for about 3 lines of 100 characters (96 + 200 bytes each).
    const { h } = hub({ maxLines: 100, maxPendingBytes: 1000 });
    const slow = h.subscribe(1, 0);
    const fast = h.subscribe(1, 0);
    const text = "x".repeat(100);
    h.append(line(1, text));
    expect((await slow.next()).value.seq).toBe(1);
    for (let i = 1; i <= 10; i++) {
      if (i > 1) h.append(line(1, text));
      expect((await fast.next()).value.seq).toBe(i);
    }
    // Freed as soon as it overflowed, not when it next reads.
    expect(h.subscriberCount(1)).toBe(1);
    const err = await slow.next().catch((e) => e);
    expect(err).toBeInstanceOf(LogStreamLagged);
    expect(err.lastDelivered).toBe(1);
    expect((await slow.next()).done).toBe(true);
  });

  test("a burst larger than the ring reaches a subscriber that had no chance to read yet", async () => {
    const { h } = hub({ maxLines: 5 });
    const sub = h.subscribe(1, 0);
    for (let i = 1; i <= 50; i++) h.append(line(1, `l${i}`));
    expect((await drain(sub, 50)).map((l) => l.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
  });

  test("the backlog does not count against the bound", async () => {
    const { h } = hub({ maxLines: 100, maxPendingBytes: 1000 });
    for (let i = 1; i <= 50; i++) h.append(line(1, "y".repeat(100)));
    const sub = h.subscribe(1, 0);
    h.append(line(1, "live"));
    const got = await drain(sub, 51);
    expect(got[50].message).toBe("live");
  });

  test("closing or aborting frees the subscription at once and ends a waiting next()", async () => {
    const { h } = hub();
    const ac = new AbortController();
    const a = h.subscribe(1, 0, ac.signal);
    const b = h.subscribe(1, 0);
    expect(h.subscriberCount()).toBe(2);
    const waiting = a.next();
    ac.abort();
    expect(await waiting).toEqual({ done: true, value: undefined });
    b.close();
    b.close();
    expect(h.subscriberCount()).toBe(0);
    expect(h.subscriberCount(1)).toBe(0);
  });

  test("an already aborted signal gives an ended subscription", async () => {
    const { h } = hub();
    const sub = h.subscribe(1, 0, AbortSignal.abort());
    expect((await sub.next()).done).toBe(true);
    expect(h.subscriberCount()).toBe(0);
  });
});

describe("expiry and memory", () => {
  test("sweep forgets sessions past their TTL unless someone is watching", () => {
    const { h, clock } = hub();
    h.append(line(1, "a"));
    h.append(line(2, "b"));
    const watching = h.subscribe(2, 0);
    clock.advance(59_999);
    expect(h.sweep()).toBe(0);
    clock.advance(1);
    expect(h.sweep()).toBe(1);
    expect(h.stats().sessions).toBe(1);
    watching.close();
    clock.advance(60_000);
    expect(h.sweep()).toBe(1);
    expect(h.stats()).toEqual({ sessions: 0, lines: 0, bytes: 0, pinnedBytes: 0, subscribers: 0, waiting: 0 });
  });

  test("total bytes stay under the bound; the least recently written sessions lose lines first", () => {
    const { h } = hub({ maxLines: 1000, maxBytes: 200_000 });
    const big = "x".repeat(10_000);
    for (let s = 1; s <= 30; s++) for (let i = 0; i < 3; i++) h.append(line(s, big));
    const st = h.stats();
    expect(st.bytes).toBeLessThanOrEqual(200_000);
    expect(st.lines).toBeGreaterThan(5);
    // The newest session keeps its lines; the oldest are gone.
    expect(h.subscribe(30, 0)).toBeDefined();
    expect(h.subscriberCount(30)).toBe(1);
  });

  test("many small sessions are bounded too (each costs its overhead)", () => {
    const { h } = hub({ maxBytes: 100_000 });
    for (let s = 1; s <= 10_000; s++) h.append(line(s, "hi"));
    expect(h.stats().bytes).toBeLessThanOrEqual(100_000);
    expect(h.stats().sessions).toBeLessThan(200);
  });
});

describe("a session's tail (crashed and lost events' log_tail)", () => {
  test("the newest lines, oldest first; none for a session with no buffer; the buffer is left as it was", () => {
    const { h } = hub();
    for (let i = 1; i <= 7; i++) h.append(line(1, `m${i}`)); // the ring keeps 5
    expect(h.tail(1, 3).map((l) => l.message)).toEqual(["m5", "m6", "m7"]);
    expect(h.tail(1, 20).map((l) => l.message)).toEqual(["m3", "m4", "m5", "m6", "m7"]);
    expect(h.tail(1, 0)).toEqual([]);
    expect(h.tail(2, 20)).toEqual([]);
    expect(h.stats()).toMatchObject({ sessions: 1, lines: 5 });
  });
});
