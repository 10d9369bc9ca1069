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
