import { describe, expect, test } from "bun:test";
import { backupOutcome, backupUpdate, hostOutcome, sessionMove, sessionOutcome } from "./apply.ts";
import type { BackupStatus, SessionStatus } from "./messages.ts";
import type { SessionChange } from "./store.ts";

const msg = (status: SessionStatus["status"], exit_code?: number): SessionStatus => ({ session_id: 7, sgc_id: 3, status, exit_code });
const ev = { id: 1, routing_key: "manman.session.running", payload: {} };
const change = (c: Partial<SessionChange>): SessionChange => ({ previousStatus: null, moved: false, keptAlive: false, superseded: [], portsFreed: 0, events: [], ...c });

describe("deciding what a session message did", () => {
  test("the move asks for the legal predecessors and carries the exit code", () => {
    expect(sessionMove(msg("crashed", 137))).toEqual({ sessionId: 7, to: "crashed", exitCode: 137, from: ["pending", "starting", "running", "stopping"], routingKey: null });
    expect(sessionMove(msg("crashed", 137), "status.session.7").routingKey).toBe("status.session.7");
    expect(sessionMove(msg("running")).exitCode).toBeNull();
    expect(sessionMove(msg("crashed", 0)).exitCode).toBe(0);
  });
  test("an unknown session is rejected", () => {
    expect(sessionOutcome(msg("running"), change({})).kind).toBe("rejected");
  });
  test("a committed move is applied with its events, superseded sessions and freed ports", () => {
    const o = sessionOutcome(msg("running"), change({ previousStatus: "starting", moved: true, superseded: [5], portsFreed: 2, events: [ev] }));
    expect(o.kind).toBe("applied");
    expect(o.events).toEqual([ev]);
    expect(o.detail).toContain("superseded sessions 5");
    expect(o.detail).toContain("freed 2 ports");
  });
  test("same state is a keepalive, backwards is stale, pending -> running is early", () => {
    const kept = sessionOutcome(msg("starting"), change({ previousStatus: "starting", keptAlive: true }));
    expect(kept).toMatchObject({ kind: "unchanged", detail: "keepalive: session still starting" });
    expect(sessionOutcome(msg("running"), change({ previousStatus: "stopping" })).kind).toBe("stale");
    expect(sessionOutcome(msg("stopped"), change({ previousStatus: "crashed" })).kind).toBe("stale");
    expect(sessionOutcome(msg("running"), change({ previousStatus: "pending" })).kind).toBe("early");
  });
  test("a legal move the statement did not make is an error to retry, not a guess", () => {
    expect(() => sessionOutcome(msg("stopped"), change({ previousStatus: "running" }))).toThrow();
  });
});

describe("deciding what a host message did", () => {
  test("unknown server is acked as unknown_server, change applied, quiet heartbeat unchanged", () => {
    expect(hostOutcome(1, { found: false, previousStatus: null, events: [] }, "x").kind).toBe("unknown_server");
    expect(hostOutcome(1, { found: true, previousStatus: "offline", events: [ev] }, "x").kind).toBe("applied");
    expect(hostOutcome(1, { found: true, previousStatus: "online", events: [] }, "x").kind).toBe("unchanged");
  });
});

describe("deciding what a backup message did", () => {
  const done: BackupStatus = { backup_id: 9, status: "completed", s3_url: "s3://backups/3/2/9.tar.gz", size_bytes: undefined, error_message: undefined };
  test("the update completes the s3_url with the bucket and asks for legal predecessors", () => {
    expect(backupUpdate(done, "prod")).toEqual({ backupId: 9, to: "completed", s3Url: "s3://prod/backups/3/2/9.tar.gz", sizeBytes: null, errorMessage: null, from: ["pending", "running"] });
    expect(backupUpdate(done, undefined).s3Url).toBe("s3://backups/3/2/9.tar.gz");
  });
  test("a database without a backups table dead-letters with that reason; unknown ids are rejected", () => {
    expect(backupOutcome(done, { table: "missing" })).toMatchObject({ kind: "rejected", detail: expect.stringContaining("no backups table") });
    expect(backupOutcome(done, { table: "present", previousStatus: null, updated: false, configStamped: false }).kind).toBe("rejected");
  });
  test("applied, repeated, and a late message for a finished backup", () => {
    expect(backupOutcome(done, { table: "present", previousStatus: "pending", updated: true, configStamped: true }).detail).toContain("last_backup_at");
    expect(backupOutcome(done, { table: "present", previousStatus: "completed", updated: false, configStamped: false }).kind).toBe("unchanged");
    expect(backupOutcome({ ...done, status: "failed" }, { table: "present", previousStatus: "completed", updated: false, configStamped: false }).kind).toBe("stale");
  });
});
