import { describe, expect, test } from "bun:test";
import { MAX_TIMESTAMP, MIN_TIMESTAMP, escapeMessage, formatLine, formatLines, parseLines, unescapeMessage } from "./format.ts";

const at = Date.parse("2026-01-02T15:04:05.123Z");

describe("formatLine", () => {
  test("writes CONTRACT §6's line with milliseconds in UTC", () => {
    expect(formatLine({ timestamp: at, source: "stdout", message: "Server started" })).toBe("[2026-01-02T15:04:05.123Z] [stdout] Server started\n");
    expect(formatLine({ timestamp: Date.parse("2026-01-02T15:04:05Z"), source: "host", message: "" })).toBe("[2026-01-02T15:04:05.000Z] [host] \n");
  });

  test("a message with line breaks stays one line", () => {
    const text = formatLine({ timestamp: at, source: "stderr", message: "Exception\n  at Main()\r\n" });
    expect(text).toBe("[2026-01-02T15:04:05.123Z] [stderr] Exception\\n  at Main()\\r\\n\n");
    expect(text.split("\n")).toHaveLength(2);
    expect(text).not.toContain("\r");
  });

  test("backslashes are left alone unless they would read as an escape", () => {
    expect(escapeMessage("C:\\Games\\srv\\x.exe")).toBe("C:\\Games\\srv\\x.exe");
    expect(escapeMessage("C:\\new\\run")).toBe("C:\\\\new\\\\run");
    expect(escapeMessage("a\\\\b")).toBe("a\\\\\\b");
    expect(escapeMessage("ends with \\")).toBe("ends with \\");
  });

  test("times outside years 0000-9999 are clamped instead of breaking the line", () => {
    expect(formatLine({ timestamp: 9e15, source: "stdout", message: "x" })).toBe("[9999-12-31T23:59:59.999Z] [stdout] x\n");
    expect(formatLine({ timestamp: -9e15, source: "stdout", message: "x" })).toBe("[0000-01-01T00:00:00.000Z] [stdout] x\n");
    expect(new Date(MAX_TIMESTAMP).toISOString()).toBe("9999-12-31T23:59:59.999Z");
    expect(new Date(MIN_TIMESTAMP).toISOString()).toBe("0000-01-01T00:00:00.000Z");
  });
});

describe("parseLines", () => {
  test("is the inverse of formatLines for any message", () => {
    // Every troublesome character, in random combinations.
    const alphabet = ["\\", "n", "r", "\n", "\r", "a", " ", "]", "[", "é", "\t", "\u2028"];
    let seed = 42;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    const lines = Array.from({ length: 2000 }, (_, i) => ({
      timestamp: at + rand(100_000) - 50_000,
      source: ["stdout", "stderr", "host"][i % 3],
      message: Array.from({ length: rand(12) }, () => alphabet[rand(alphabet.length)]).join(""),
    }));
    expect(parseLines(formatLines(lines))).toEqual(lines);
    for (const l of lines) expect(unescapeMessage(escapeMessage(l.message))).toBe(l.message);
  });

  test("reads upstream's objects: whole seconds, raw messages, APPENDED markers", () => {
    const upstream =
      "[2026-01-02T15:04:05Z] [host] Server started\n" +
      "[2026-01-02T15:04:06Z] [host] path C:\\new\\run\n" +
      "\n--- APPENDED AT 2026-01-02T15:07:30Z ---\n" +
      "[2026-01-02T15:04:59Z] [host] late line\n";
    expect(parseLines(upstream)).toEqual([
      { timestamp: Date.parse("2026-01-02T15:04:05Z"), source: "host", message: "Server started" },
      // Upstream did not escape: its backslashes are kept as they are.
      { timestamp: Date.parse("2026-01-02T15:04:06Z"), source: "host", message: "path C:\\new\\run" },
      { timestamp: Date.parse("2026-01-02T15:04:59Z"), source: "host", message: "late line" },
    ]);
  });

  test("a raw multi-line message of upstream's comes back whole", () => {
    const text = "[2026-01-02T15:04:05Z] [stderr] Exception\n  at Main()\n\n[2026-01-02T15:04:06Z] [stdout] next\n";
    expect(parseLines(text).map((l) => l.message)).toEqual(["Exception\n  at Main()\n", "next"]);
  });

  test("tolerates offsets, long fractions, a trimmed empty message and a missing final newline", () => {
    const text = "[2026-01-02T17:04:05+02:00] [stdout] a\n[2026-01-02T15:04:05.123456Z] [stdout] b\n[2026-01-02T15:04:06.000Z] [host]";
    expect(parseLines(text)).toEqual([
      { timestamp: Date.parse("2026-01-02T15:04:05Z"), source: "stdout", message: "a" },
      { timestamp: at, source: "stdout", message: "b" },
      { timestamp: Date.parse("2026-01-02T15:04:06Z"), source: "host", message: "" },
    ]);
  });

  test("text before the first header belongs to no line and is left out", () => {
    expect(parseLines("garbage\n[2026-01-02T15:04:05.123Z] [stdout] x\n")).toEqual([{ timestamp: at, source: "stdout", message: "x" }]);
    expect(parseLines("")).toEqual([]);
  });
});
