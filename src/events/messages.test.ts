import { describe, expect, test } from "bun:test";
import { decodeEvent } from "./messages.ts";

const enc = (x: unknown) => new TextEncoder().encode(typeof x === "string" ? x : JSON.stringify(x));

describe("decoding host manager messages", () => {
  test("a valid host status", () => {
    const d = decodeEvent("status.host.42", enc({ server_id: 42, status: "online" }));
    expect(d).toEqual({ ok: true, event: { kind: "host_status", key: "server:42", message: { server_id: 42, status: "online" } } });
  });
  test("a valid session status with and without exit_code", () => {
    const a = decodeEvent("status.session.7", enc({ session_id: 7, sgc_id: 3, status: "crashed", exit_code: 137 }));
    expect(a.ok && a.event.key).toBe("session:7");
    expect(a.ok && a.event.message).toMatchObject({ exit_code: 137 });
    const b = decodeEvent("status.session.7", enc({ session_id: 7, sgc_id: 3, status: "running" }));
    expect(b.ok).toBe(true);
    const c = decodeEvent("status.session.7", enc({ session_id: 7, sgc_id: 3, status: "stopped", exit_code: null }));
    expect(c.ok).toBe(true);
  });
  test("a heartbeat with and without session_stats", () => {
    expect(decodeEvent("health.host.42", enc({ server_id: 42 })).ok).toBe(true);
    const stats = { total: 3, pending: 0, starting: 0, running: 2, stopping: 0, stopped: 1, crashed: 0 };
    expect(decodeEvent("health.host.42", enc({ server_id: 42, session_stats: stats })).ok).toBe(true);
  });
  test("extra fields are ignored and kept out of the way", () => {
    const d = decodeEvent("status.host.1", enc({ server_id: 1, status: "offline", hostname: "x", extra: { a: 1 } }));
    expect(d.ok).toBe(true);
  });
  test.each([
    ["missing field", "status.host.1", { status: "online" }, "server_id"],
    ["missing status", "status.session.1", { session_id: 1, sgc_id: 2 }, "status"],
    ["wrong type", "status.host.1", { server_id: "1", status: "online" }, "server_id"],
    ["unknown host status", "status.host.1", { server_id: 1, status: "sleeping" }, "online or offline"],
    ["unknown session status", "status.session.1", { session_id: 1, sgc_id: 2, status: "paused" }, "must be one of"],
    ["fractional id", "health.host.1", { server_id: 1.5 }, "whole number"],
    ["negative id", "health.host.1", { server_id: -1 }, "positive"],
    ["id beyond 2^53", "health.host.1", { server_id: 2 ** 60 }, "whole number"],
    ["exit_code not a number", "status.session.1", { session_id: 1, sgc_id: 2, status: "crashed", exit_code: "1" }, "exit_code"],
    ["body is an array", "health.host.1", [1, 2], "invalid heartbeat"],
  ])("%s is refused with a reason", (_name, key, body, reason) => {
    const d = decodeEvent(key, enc(body));
    expect(d.ok).toBe(false);
    expect(!d.ok && d.reason).toContain(reason);
  });
  test("malformed JSON, empty and non-UTF-8 bodies are refused", () => {
    for (const body of [enc("{not json"), new Uint8Array(), new Uint8Array([0xff, 0xfe]), null]) {
      const d = decodeEvent("status.host.1", body);
      expect(d.ok).toBe(false);
      expect(!d.ok && d.reason).toContain("not JSON");
    }
  });
  test("an unknown routing key is refused", () => {
    const d = decodeEvent("status.planet.1", enc({}));
    expect(!d.ok && d.reason).toContain("no handler");
  });
});
