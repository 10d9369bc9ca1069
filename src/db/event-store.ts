/**
 * The core's EventStore (events/store.ts) on PostgreSQL: heartbeats, host
 * status and session moves written in groups (groups.ts: what arrives in one
 * turn of the event loop, one statement), backups one statement each.
 */
import type { Sql } from "./pool.ts";
import type { EventStore, LogTailOf } from "../events/store.ts";
import { HostStatusWriter } from "./hosts.ts";
import { HeartbeatWriter } from "./heartbeats.ts";
import { SessionMoveWriter } from "./sessions.ts";
import { updateBackup } from "./backups.ts";

/** `logTail`: the last lines a crashed or lost event carries (none when omitted). */
export function createEventStore(sql: Sql, logTail?: LogTailOf): EventStore {
  const heartbeats = new HeartbeatWriter(sql);
  const hosts = new HostStatusWriter(sql);
  const sessions = new SessionMoveWriter(sql, logTail);
  return {
    setHostStatus: (id, status) => hosts.set(id, status),
    recordHeartbeat: (id) => heartbeats.record(id),
    moveSession: (move) => sessions.move(move),
    updateBackup: (update) => updateBackup(sql, update),
  };
}
