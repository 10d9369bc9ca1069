import { describe, expect, test } from "bun:test";
import { cutUtf8, formatLogTail, LOG_TAIL_LINE_BYTES } from "./tail.ts";

const bytes = (s: string) => new TextEncoder().encode(s).length;

describe("a crash's log tail", () => {
  test("lines are in the archive's format, oldest first, the newest 20 kept", () => {
    const lines = Array.from({ length: 25 }, (_, i) => ({ timestamp: Date.UTC(2026, 0, 2, 15, 4, 5, i), source: i % 2 ? "stderr" : "stdout", message: `line ${i}` }));
    const tail = formatLogTail(lines);
    expect(tail).toHaveLength(20);
    expect(tail[0]).toBe("[2026-01-02T15:04:05.005Z] [stderr] line 5");
    expect(tail[19]).toBe("[2026-01-02T15:04:05.024Z] [stdout] line 24");
  });

  test("fewer lines than the limit, or none, are kept as they are", () => {
    expect(formatLogTail([])).toEqual([]);
    expect(formatLogTail([{ timestamp: 0, source: "host", message: "a\nb" }])).toEqual(["[1970-01-01T00:00:00.000Z] [host] a\\nb"]);
  });

  test("a long line is cut at 500 bytes, never inside a character", () => {
    const [ascii] = formatLogTail([{ timestamp: 0, source: "stdout", message: "x".repeat(2000) }]);
    expect(bytes(ascii!)).toBe(LOG_TAIL_LINE_BYTES);
    // "€" is 3 bytes; the header is 36 bytes, so a character straddles byte 500.
    const [euro] = formatLogTail([{ timestamp: 0, source: "stdout", message: "€".repeat(400) }]);
    expect(bytes(euro!)).toBeLessThanOrEqual(LOG_TAIL_LINE_BYTES);
    expect(bytes(euro!)).toBeGreaterThan(LOG_TAIL_LINE_BYTES - 3);
    expect(euro!.endsWith("€")).toBe(true);
  });

  test("cutting UTF-8 keeps whole characters of every width", () => {
    expect(cutUtf8("aé😀", 3)).toBe("aé");
    expect(cutUtf8("aé😀", 6)).toBe("aé");
    expect(cutUtf8("aé😀", 7)).toBe("aé😀");
    expect(cutUtf8("😀", 3)).toBe("");
    expect(cutUtf8("short", 500)).toBe("short");
  });
});
