import { describe, expect, test } from "bun:test";
import { PendingWindows, type PendingLine } from "./window.ts";

const M = Date.parse("2026-01-02T15:04:00Z");
const line = (sessionId: number, timestamp: number, message = "m", source = "stdout"): PendingLine => ({ sessionId, timestamp, source, message });

describe("PendingWindows", () => {
  test("groups lines by session and UTC minute", () => {
    const w = new PendingWindows<number>();
    w.add(line(1, M + 1), 1);
    w.add(line(1, M + 59_999), 2);
    w.add(line(1, M + 60_000), 3);
    w.add(line(2, M + 5), 4);
    expect(w.pendingLines).toBe(4);
    expect(w.all()).toEqual([
      { sessionId: 1, minuteMs: M },
      { sessionId: 2, minuteMs: M },
      { sessionId: 1, minuteMs: M + 60_000 },
    ]);
  });

  test("a taken window has its lines by time, same-millisecond lines in arrival order, handles alongside", () => {
    const w = new PendingWindows<string>();
    w.add(line(1, M + 30, "c"), "hc");
    w.add(line(1, M + 10, "a1"), "ha1");
    w.add(line(1, M + 20, "b"), "hb");
    w.add(line(1, M + 10, "a2"), "ha2");
    const t = w.take({ sessionId: 1, minuteMs: M })!;
    expect(t.lines.map((l) => l.message)).toEqual(["a1", "a2", "b", "c"]);
    expect(t.handles).toEqual(["ha1", "ha2", "hb", "hc"]);
    expect([t.count, t.startTime, t.endTime]).toEqual([4, M + 10, M + 30]);
    expect(w.pendingLines).toBe(0);
    expect(w.take({ sessionId: 1, minuteMs: M })).toBeUndefined();
  });

  test("the row's source is the one source, or host when they mix", () => {
    const w = new PendingWindows<number>();
    w.add(line(1, M, "x", "stderr"), 1);
    w.add(line(1, M, "y", "stderr"), 2);
    w.add(line(2, M, "x", "stdout"), 3);
    w.add(line(2, M, "y", "stderr"), 4);
    expect(w.take({ sessionId: 1, minuteMs: M })!.source).toBe("stderr");
    expect(w.take({ sessionId: 2, minuteMs: M })!.source).toBe("host");
  });

  test("a minute is due once it ended and the grace passed", () => {
    const w = new PendingWindows<number>();
    w.add(line(1, M + 5), 1);
    w.add(line(1, M + 60_000), 2);
    const grace = 15_000;
    expect(w.due(M + 60_000 + grace - 1, grace)).toEqual([]);
    expect(w.due(M + 60_000 + grace, grace)).toEqual([{ sessionId: 1, minuteMs: M }]);
    expect(w.due(M + 120_000 + grace, grace)).toHaveLength(2);
  });

  test("a line arriving after its minute was taken opens a new window (the next part)", () => {
    const w = new PendingWindows<number>();
    w.add(line(1, M + 5), 1);
    expect(w.take({ sessionId: 1, minuteMs: M })!.handles).toEqual([1]);
    w.add(line(1, M + 6), 2);
    expect(w.take({ sessionId: 1, minuteMs: M })!.handles).toEqual([2]);
  });

  test("a window is also due once its first line has been held long enough, whatever its minute", () => {
    const w = new PendingWindows<number>();
    const now = M + 10_000;
    w.add(line(1, M + 3_600_000), 1, now); // a host clock an hour ahead
    w.add(line(1, M + 3_600_001), 2, now + 50_000);
    w.add(line(2, M), 3); // no arrival time: never held too long
    expect(w.heldLongerThan(now + 74_999, 75_000)).toEqual([]);
    expect(w.heldLongerThan(now + 75_000, 75_000)).toEqual([{ sessionId: 1, minuteMs: M + 3_600_000 }]);
    expect(w.take({ sessionId: 1, minuteMs: M + 3_600_000 })!.handles).toEqual([1, 2]);
    expect(w.heldLongerThan(now + 1e9, 75_000)).toEqual([]);
  });

  test("ofSession lists only that session's windows", () => {
    const w = new PendingWindows<number>();
    w.add(line(1, M + 60_000), 1);
    w.add(line(1, M), 2);
    w.add(line(2, M), 3);
    expect(w.ofSession(1)).toEqual([{ sessionId: 1, minuteMs: M }, { sessionId: 1, minuteMs: M + 60_000 }]);
    expect(w.ofSession(3)).toEqual([]);
  });

  test("past the bound the oldest windows (by first line) are cut until half the bound is left", () => {
    const w = new PendingWindows<number>();
    w.add(line(2, M), 0); // session 2's window opens first ...
    for (let i = 0; i < 60; i++) w.add(line(1, M + i), 1 + i); // 60 in session 1
    for (let i = 1; i < 30; i++) w.add(line(2, M + i), 100 + i); // ... and holds 30
    for (let i = 0; i < 20; i++) w.add(line(3, M - 60_000 + i), 200 + i); // 20, an older minute, opened later
    for (let i = 0; i < 20; i++) w.add(line(4, M + i), 300 + i); // 20
    expect(w.toCutEarly(130)).toEqual([]);
    expect(w.toCutEarly(100)).toEqual([{ sessionId: 2, minuteMs: M }, { sessionId: 1, minuteMs: M }]);
    expect(w.toCutEarly(10, 5)).toEqual([
      { sessionId: 2, minuteMs: M },
      { sessionId: 1, minuteMs: M },
      { sessionId: 3, minuteMs: M - 60_000 },
      { sessionId: 4, minuteMs: M },
    ]);
  });

  test("a small window whose first line is the oldest held is cut before bigger, newer ones", () => {
    // A minute's last lines (session 1 moved on to the next minute) hold back
    // the multiple-ack of every line behind them: they go first.
    const w = new PendingWindows<number>();
    w.add(line(1, M - 1), 0);
    for (let i = 0; i < 50; i++) w.add(line(1, M + i), 1 + i);
    for (let i = 0; i < 50; i++) w.add(line(2, M + i), 100 + i);
    expect(w.toCutEarly(100, 60)).toEqual([
      { sessionId: 1, minuteMs: M - 60_000 },
      { sessionId: 1, minuteMs: M },
    ]);
    // A window taken and opened again is new: it goes after the others.
    w.take({ sessionId: 1, minuteMs: M - 60_000 });
    w.add(line(1, M - 2), 500);
    expect(w.toCutEarly(50, 40)).toEqual([
      { sessionId: 1, minuteMs: M },
      { sessionId: 2, minuteMs: M },
    ]);
  });

  test("openedBefore: the windows whose first handle comes before a mark, in the order they were opened", () => {
    const w = new PendingWindows<number>();
    w.add(line(2, M), 5);
    w.add(line(1, M), 7);
    w.add(line(2, M + 1), 8);
    w.add(line(3, M), 12);
    w.add(line(1, M + 60_000), 9);
    expect(w.openedBefore((h) => h < 10)).toEqual([
      { sessionId: 2, minuteMs: M },
      { sessionId: 1, minuteMs: M },
      { sessionId: 1, minuteMs: M + 60_000 },
    ]);
    expect(w.openedBefore(() => false)).toEqual([]);
  });

  test("times outside years 0000-9999 are clamped, not thrown on", () => {
    const w = new PendingWindows<number>();
    w.add(line(1, 9e15), 1);
    const t = w.take(w.all()[0])!;
    expect(t.lines[0].timestamp).toBe(Date.parse("9999-12-31T23:59:59.999Z"));
  });

  test("any sequence of adds and takes hands out every line exactly once", () => {
    for (let run = 0; run < 50; run++) {
      let seed = run + 1;
      const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
      const w = new PendingWindows<number>();
      const seen = new Map<number, number>();
      const sent = new Map<number, PendingLine>();
      let taken = 0;
      const takeAll = (ids: { sessionId: number; minuteMs: number }[]) => {
        for (const id of ids) {
          const t = w.take(id);
          if (!t) continue;
          expect(t.lines).toHaveLength(t.handles.length);
          taken += t.count;
          for (let i = 0; i < t.lines.length; i++) {
            const h = t.handles[i];
            seen.set(h, (seen.get(h) ?? 0) + 1);
            expect(t.lines[i]).toBe(sent.get(h)!);
            expect(t.lines[i].timestamp).toBeGreaterThanOrEqual(t.startTime);
            if (i > 0) expect(t.lines[i].timestamp).toBeGreaterThanOrEqual(t.lines[i - 1].timestamp);
          }
          expect(t.lines.every((l) => (l as PendingLine).sessionId === t.sessionId && l.timestamp - t.minuteMs < 60_000 && l.timestamp >= t.minuteMs)).toBe(true);
        }
      };
      let now = M;
      for (let n = 0; n < 2000; n++) {
        now += rand(200);
        const l = line(1 + rand(4), now - rand(90_000), `l${n}`);
        sent.set(n, l);
        w.add(l, n);
        const r = rand(100);
        if (r < 5) takeAll(w.due(now, 15_000));
        else if (r < 7) takeAll(w.ofSession(1 + rand(4)));
        else if (r < 9) takeAll(w.toCutEarly(200));
        expect(w.pendingLines).toBe(n + 1 - taken);
      }
      takeAll(w.all());
      expect(w.pendingLines).toBe(0);
      expect(w.windowCount).toBe(0);
      expect(seen.size).toBe(2000);
      expect([...seen.values()].every((c) => c === 1)).toBe(true);
    }
  });
});
