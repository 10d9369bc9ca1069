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
    ["missing id, none in the key", "status.host.x", { status: "online" }, "server_id: not given"],
    ["missing status", "status.session.1", { session_id: 1, sgc_id: 2 }, "status"],
    ["wrong type", "status.host.1", { server_id: "1", status: "online" }, "server_id"],
    ["unknown host status", "status.host.1", { server_id: 1, status: "sleeping" }, "online or offline"],
    ["unknown session status", "status.session.1", { session_id: 1, sgc_id: 2, status: "paused" }, "must be one of"],
    ["fractional id", "health.host.1", { server_id: 1.5 }, "whole number"],
    ["negative id", "health.host.1", { server_id: -1 }, "not be negative"],
    ["no id anywhere", "status.session.x", { session_id: 0, sgc_id: 0, status: "running" }, "session_id: not given"],
    ["unknown backup status", "status.backup.9", { backup_id: 9, status: "done" }, "must be one of"],
    ["negative size", "status.backup.9", { backup_id: 9, status: "completed", size_bytes: -1 }, "size_bytes"],
    ["id beyond 2^53", "health.host.1", { server_id: 2 ** 60 }, "whole number"],
    ["exit_code not a number", "status.session.1", { session_id: 1, sgc_id: 2, status: "crashed", exit_code: "1" }, "exit_code"],
    ["body is an array", "health.host.1", [1, 2], "not a JSON object"],
  ])("%s is refused with a reason", (_name, key, body, reason) => {
    const d = decodeEvent(key, enc(body));
    expect(d.ok).toBe(false);
    expect(!d.ok && d.reason).toContain(reason);
  });
  test("0 means not given: a real host's keepalive and kill carry sgc_id 0", () => {
    const keepalive = decodeEvent("status.session.7", enc({ session_id: 7, sgc_id: 0, status: "starting" }));
    expect(keepalive).toEqual({ ok: true, event: { kind: "session_status", key: "session:7", message: { session_id: 7, sgc_id: undefined, status: "starting", exit_code: undefined }, routingKey: "status.session.7" } });
    const kill = decodeEvent("status.session.7", enc({ session_id: 7, sgc_id: 0, status: "stopped" }));
    expect(kill.ok && kill.event.message).toMatchObject({ session_id: 7, status: "stopped" });
  });
  test("exit_code 0 is a clean exit, not an absence (the host sends it only when known)", () => {
    const d = decodeEvent("status.session.7", enc({ session_id: 7, sgc_id: 3, status: "crashed", exit_code: 0 }));
    expect(d.ok && d.event.message).toMatchObject({ exit_code: 0 });
  });
  test("an id of 0 or missing in the body is taken from the routing key", () => {
    const d = decodeEvent("health.host.42", enc({ server_id: 0 }));
    expect(d.ok && d.event.key).toBe("server:42");
    expect(d.ok && d.event.message).toMatchObject({ server_id: 42 });
    const e = decodeEvent("status.session.8", enc({ status: "running" }));
    expect(e.ok && e.event.message).toMatchObject({ session_id: 8 });
    // The body wins when it has one.
    const f = decodeEvent("status.host.1", enc({ server_id: 5, status: "online" }));
    expect(f.ok && f.event.key).toBe("server:5");
  });
  test("backup status as real hosts send it", () => {
    const done = decodeEvent("status.backup.9", enc({ backup_id: 9, s3_url: "s3://backups/3/2/9.tar.gz", status: "completed" }));
    expect(done).toEqual({
      ok: true,
      event: { kind: "backup_status", key: "backup:9", message: { backup_id: 9, status: "completed", s3_url: "s3://backups/3/2/9.tar.gz", size_bytes: undefined, error_message: undefined } },
    });
    const failed = decodeEvent("status.backup.9", enc({ backup_id: 9, status: "failed", error_message: "tar: disk full", size_bytes: 0 }));
    expect(failed.ok && failed.event.message).toMatchObject({ status: "failed", error_message: "tar: disk full", size_bytes: undefined });
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
