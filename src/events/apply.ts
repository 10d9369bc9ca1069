/**
 * What each message does (CONTRACT §4): run its one statement, then decide
 * from what the statement found. The decisions are pure functions; the
 * statements sit behind a narrow EventStore (store.ts) so the decisions can
 * be tested without a database.
 */
import type { BackupStatus, EventMessage, SessionStatus } from "./messages.ts";
import { classifyMove, legalPredecessors, type SessionState } from "./session-machine.ts";
import { backupPredecessors, classifyBackupMove, fullS3Url } from "./backup-status.ts";
import type { BackupChange, BackupUpdate, EventStore, HostChange, OutboxEvent, SessionChange, SessionMove } from "./store.ts";

export interface ApplyOptions {
  /** S3_BUCKET: completes the bucket-less s3_url real hosts send. */
  s3Bucket?: string;
}

export type Outcome =
  /** The change is committed; `events` are in the outbox, to be published. */
  | { kind: "applied"; events: OutboxEvent[]; detail: string }
  /** Accepted, nothing to change (same state, heartbeat of an online host); a keepalive refreshed updated_at. */
  | { kind: "unchanged"; events: OutboxEvent[]; detail: string }
  /** A redelivery of something already passed: acked and counted, not dead-lettered. */
  | { kind: "stale"; events: OutboxEvent[]; detail: string }
  /**
   * A host message for a server with no row (a deleted host keeps
   * heartbeating every 5 s): acked and counted; dead-lettering it would
   * fill the DLQ for ever.
   */
  | { kind: "unknown_server"; events: OutboxEvent[]; detail: string }
  /** pending -> running: its predecessor may still be on its way; try again shortly. */
  | { kind: "early"; events: OutboxEvent[]; detail: string }
  /** Can never succeed: dead-letter with this reason. */
  | { kind: "rejected"; events: OutboxEvent[]; detail: string };

export type OutcomeKind = Outcome["kind"];

export async function applyEvent(store: EventStore, event: EventMessage, options: ApplyOptions = {}): Promise<Outcome> {
  switch (event.kind) {
    case "host_status": {
      const { server_id, status } = event.message;
      return hostOutcome(server_id, await store.setHostStatus(server_id, status), `host ${status}`);
    }
    case "heartbeat": {
      const { server_id } = event.message;
      const change = await store.recordHeartbeat(server_id);
      return hostOutcome(server_id, change, change.events.length > 0 ? "host back online" : "heartbeat");
    }
    case "session_status": {
      const m = event.message;
      return sessionOutcome(m, await store.moveSession(sessionMove(m, event.routingKey)));
    }
    case "backup_status": {
      const m = event.message;
      return backupOutcome(m, await store.updateBackup(backupUpdate(m, options.s3Bucket)));
    }
  }
}

export function sessionMove(m: SessionStatus, routingKey?: string): SessionMove {
  return { sessionId: m.session_id, to: m.status, exitCode: m.exit_code ?? null, from: legalPredecessors(m.status), routingKey: routingKey ?? null };
}

export function backupUpdate(m: BackupStatus, bucket: string | undefined): BackupUpdate {
  return {
    backupId: m.backup_id,
    to: m.status,
    s3Url: fullS3Url(m.s3_url, bucket) ?? null,
    sizeBytes: m.size_bytes ?? null,
    errorMessage: m.error_message ?? null,
    from: backupPredecessors(m.status),
  };
}

export function hostOutcome(serverId: number, change: HostChange, detail: string): Outcome {
  if (!change.found) return { kind: "unknown_server", events: [], detail: `server ${serverId} does not exist` };
  const changed = change.events.length > 0;
  return { kind: changed ? "applied" : "unchanged", events: change.events, detail };
}

export function sessionOutcome(m: SessionStatus, change: SessionChange): Outcome {
  const to = m.status;
  if (change.previousStatus === null) return { kind: "rejected", events: [], detail: `session ${m.session_id} does not exist` };
  const from = change.previousStatus as SessionState;
  if (change.moved) {
    const superseded = change.superseded.length > 0 ? `; stopped superseded sessions ${change.superseded.join(", ")}` : "";
    const ports = change.portsFreed > 0 ? `; freed ${change.portsFreed} ports` : "";
    return { kind: "applied", events: change.events, detail: `session ${from} -> ${to}${superseded}${ports}` };
  }
  switch (classifyMove(from, to)) {
    case "same":
      return { kind: "unchanged", events: [], detail: change.keptAlive ? `keepalive: session still ${to}` : `session already ${to}` };
    case "stale":
      return { kind: "stale", events: [], detail: `stale redelivery: session is ${from}, message says ${to}` };
    case "skip":
      return { kind: "early", events: [], detail: `transition ${from} -> ${to} skips starting` };
    case "advance":
      // Cannot happen: the statement locks the row it checks. If it ever
      // does, an exception makes the consumer retry rather than guess.
      throw new Error(`session ${m.session_id} was ${from} but ${to} was not applied`);
  }
}

export function backupOutcome(m: BackupStatus, change: BackupChange): Outcome {
  if (change.table === "missing") {
    return { kind: "rejected", events: [], detail: "this database has no backups table: backup status needs a ManManV2 database (the API's migrations create it)" };
  }
  if (change.previousStatus === null) return { kind: "rejected", events: [], detail: `backup ${m.backup_id} does not exist` };
  const from = change.previousStatus;
  if (change.updated) {
    const stamped = change.configStamped ? "; config last_backup_at set" : "";
    return { kind: "applied", events: [], detail: `backup ${from} -> ${m.status}${stamped}` };
  }
  return classifyBackupMove(from, m.status) === "same"
    ? { kind: "unchanged", events: [], detail: `backup already ${m.status}` }
    : { kind: "stale", events: [], detail: `stale redelivery: backup is ${from}, message says ${m.status}` };
}
