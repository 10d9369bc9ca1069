/**
 * The core's EventStore (events/store.ts) on PostgreSQL: one statement per
 * message kind, heartbeats written in groups (heartbeats.ts).
 */
import type { Sql } from "./pool.ts";
import type { EventStore, LogTailOf } from "../events/store.ts";
import { setHostStatus } from "./hosts.ts";
import { HeartbeatWriter } from "./heartbeats.ts";
import { moveSession } from "./sessions.ts";
import { updateBackup } from "./backups.ts";

/** `logTail`: the last lines a crashed or lost event carries (none when omitted). */
export function createEventStore(sql: Sql, logTail?: LogTailOf): EventStore {
  const heartbeats = new HeartbeatWriter(sql);
  return {
    setHostStatus: (id, status) => setHostStatus(sql, id, status),
    recordHeartbeat: (id) => heartbeats.record(id),
    moveSession: (move) => moveSession(sql, move, logTail),
    updateBackup: (update) => updateBackup(sql, update),
  };
}
