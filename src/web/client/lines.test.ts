import { describe, expect, test } from "bun:test";
import { LineStore, lineAsText, localTime } from "./lines.ts";

const line = (seq: number, source: string, message: string) => ({ seq, timestamp: 1764000000123 + seq, source, message });

describe("LineStore", () => {
  test("shows every line in arrival order by default, escape codes stripped for search", () => {
    const s = new LineStore(100);
    expect(s.add(line(1, "stdout", "\x1b[32mready\x1b[0m"))).toBe(true);
    s.add(line(2, "stderr", "oops"));
    expect(s.shownCount).toBe(2);
    expect(s.shownAt(0).plain).toBe("ready");
    expect(s.shownAt(1).source).toBe("stderr");
    expect(s.lastSeq).toBe(2);
  });

  test("filters by source and by case-insensitive text, old and new lines alike", () => {
    const s = new LineStore(100);
    s.add(line(1, "stdout", "Player joined"));
    s.add(line(2, "stderr", "player crashed"));
    s.add(line(3, "host", "restarting"));
    s.add({ seq: 0, timestamp: 0, source: "notice", message: "reconnected" });
    s.setFilter({ sources: new Set(["stdout", "host"]), query: "" });
    expect([...s.shown()].map((l) => l.seq)).toEqual([1, 3, 0]);
    s.setFilter({ sources: new Set(["stdout", "stderr", "host"]), query: "PLAYER" });
    expect([...s.shown()].map((l) => l.seq)).toEqual([1, 2, 0]);
    expect(s.add(line(4, "stdout", "another player"))).toBe(true);
    expect(s.add(line(5, "stdout", "nothing"))).toBe(false);
    expect(s.shownCount).toBe(4);
  });

  test("escape codes never split a search match", () => {
    const s = new LineStore(10);
    s.add(line(1, "stdout", "\x1b[31mfoo\x1b[32mbar"));
    s.setFilter({ sources: new Set(["stdout"]), query: "oob" });
    expect(s.shownCount).toBe(1);
  });

  test("keeps at most cap lines, dropping the oldest in chunks, and counts shown lines dropped", () => {
    const s = new LineStore(1000);
    s.setFilter({ sources: new Set(["stdout"]), query: "" });
    for (let i = 1; i <= 5000; i++) s.add(line(i, i % 2 ? "stdout" : "stderr", `line ${i}`));
    expect(s.size).toBeLessThanOrEqual(1000);
    expect(s.size).toBeGreaterThanOrEqual(900);
    expect(s.dropped).toBe(5000 - s.size);
    const shown = [...s.shown()];
    expect(shown.every((l) => l.source === "stdout")).toBe(true);
    expect(shown[shown.length - 1]!.seq).toBe(4999);
    expect(s.droppedShown + s.shownCount).toBe(2500);
    expect(s.shownAt(0).seq).toBe(shown[0]!.seq);
  });
});

test("copied lines carry local time, source and plain text", () => {
  const ts = new Date(2026, 10, 25, 14, 3, 1, 123).getTime();
  expect(localTime(ts)).toBe("2026-11-25 14:03:01.123");
  const s = new LineStore(10);
  s.add({ seq: 1, timestamp: ts, source: "stderr", message: "\x1b[31m<b>bad</b>" });
  expect(lineAsText(s.shownAt(0))).toBe("2026-11-25 14:03:01.123 stderr <b>bad</b>");
});

describe("LineStore with archived lines before the live ones", () => {
  const old = (n: number, from = 0) => Array.from({ length: n }, (_, i) => ({ seq: 0, timestamp: 1000 + from + i, source: i % 2 ? "stderr" : "stdout", message: `old ${from + i}` }));
  const messages = (s: LineStore) => Array.from(s.shown(), (l) => l.message);

  test("older pages go before, the gap's lines between, live lines after; each insertion is reported as a shift", () => {
    const s = new LineStore(100);
    s.add(line(1, "stdout", "live 1"));
    s.appendOlder(old(2, 10));
    s.prependOlder(old(2, 0));
    s.appendOlder(old(1, 20));
    expect(messages(s)).toEqual(["old 0", "old 1", "old 10", "old 11", "old 20", "live 1"]);
    expect(s.olderShownCount).toBe(5);
    expect(s.takeShifts()).toEqual([
      { at: 0, delta: 2 },
      { at: 0, delta: 2 },
      { at: 4, delta: 1 },
    ]);
    expect(s.takeShifts()).toEqual([]);
    expect(s.shownIndexAt(1011)).toBe(3);
    expect(s.live().map((l) => l.message)).toEqual(["live 1"]);
  });

  test("the seam's tail comes off the end of the archived lines; a jump clears them", () => {
    const s = new LineStore(100);
    s.appendOlder(old(5));
    s.add(line(1, "stdout", "live"));
    expect(s.popOlderWhile((l) => l.timestamp >= 1003).map((l) => l.message)).toEqual(["old 3", "old 4"]);
    expect(messages(s)).toEqual(["old 0", "old 1", "old 2", "live"]);
    s.takeShifts();
    s.clearOlder();
    expect(messages(s)).toEqual(["live"]);
    expect(s.takeShifts()).toEqual([{ at: 0, delta: -3 }]);
    expect(s.olderCount).toBe(0);
  });

  test("filters apply to archived lines too; the cap trims archived lines first", () => {
    const s = new LineStore(20);
    s.appendOlder(old(10));
    s.setFilter({ sources: new Set(["stdout"]), query: "" });
    expect(s.olderShownCount).toBe(5);
    for (let i = 1; i <= 15; i++) s.add(line(i, "stdout", `live ${i}`));
    expect(s.size).toBeLessThanOrEqual(20);
    expect(s.olderCount).toBeLessThan(10);
    expect(messages(s).at(-1)).toBe("live 15");
    const shifts = s.takeShifts();
    expect(shifts.at(-1)!.at).toBe(0);
    expect(shifts.at(-1)!.delta).toBeLessThan(0);
  });
});
