import { describe, expect, test } from "bun:test";
import { decodeLogLine, truncateUtf8 } from "./decode.ts";

const body = (v: unknown) => new TextEncoder().encode(typeof v === "string" ? v : JSON.stringify(v));
const ok = { session_id: 7, timestamp: 1764000000123, source: "stdout", message: "Server started" };

describe("decodeLogLine", () => {
  test("reads the contract's example and ignores unknown fields", () => {
    expect(decodeLogLine(body({ ...ok, extra: true }), 1000)).toEqual({
      ok: true,
      line: { sessionId: 7, timestamp: 1764000000123, source: "stdout", message: "Server started", truncated: false },
    });
  });

  test.each([
    ["not JSON", "{nope", /not JSON/],
    ["empty body", "", /not JSON/],
    ["missing session_id", { ...ok, session_id: undefined }, /session_id/],
    ["string session_id", { ...ok, session_id: "7" }, /session_id/],
    ["fractional timestamp", { ...ok, timestamp: 1.5 }, /timestamp/],
    ["unknown source", { ...ok, source: "syslog" }, /source/],
    ["message not a string", { ...ok, message: 42 }, /message/],
    ["array body", [1, 2], /invalid log line/],
  ])("%s is malformed with a reason", (_name, input, reason) => {
    const r = decodeLogLine(body(input), 1000);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(reason);
  });

  test("a line over the limit is cut and marked", () => {
    const r = decodeLogLine(body({ ...ok, message: "a".repeat(5000) }), 1000);
    if (!r.ok) throw new Error(r.reason);
    expect(r.line.truncated).toBe(true);
    expect(new TextEncoder().encode(r.line.message).length).toBeLessThanOrEqual(1000);
    expect(r.line.message).toMatch(/…\[truncated \d+ bytes\]$/);
  });
});

describe("truncateUtf8", () => {
  test("leaves short text alone", () => {
    expect(truncateUtf8("héllo", 100)).toEqual({ text: "héllo", truncated: false });
  });

  test("never splits a multi-byte character", () => {
    const text = "€".repeat(1000); // 3 bytes each
    const r = truncateUtf8(text, 500);
    expect(r.truncated).toBe(true);
    const head = r.text.slice(0, r.text.indexOf(" …"));
    expect(head).toBe("€".repeat(head.length));
    expect(new TextEncoder().encode(r.text).length).toBeLessThanOrEqual(500);
    expect(r.text).toContain(`truncated ${3000 - head.length * 3} bytes`);
  });
});
