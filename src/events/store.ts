/**
 * What the core asks of the database, in the core's own terms: one call per
 * message kind (EventStore), the change each call asks for, and what the
 * statement found and did. `db/` implements it (db/event-store.ts); the
 * decisions in apply.ts read only these shapes, so they are tested without
 * a database.
 */
import type { BackupState } from "./messages.ts";
import type { SessionState } from "./session-machine.ts";

/**
 * An outbox row: an external event committed with its change, or a command
 * to a host manager committed with its row (the backup scheduler), waiting
 * to be published.
 */
export interface OutboxEvent {
  id: number;
  routing_key: string;
  payload: Record<string, unknown>;
  /** Null or absent: the external exchange (every event). */
  exchange?: string | null;
  /** The exact body; null or absent: rendered from `payload` (external.ts). */
  body?: string | null;
  /** AMQP properties beside the defaults (e.g. `expiration`); null or absent: none. */
  properties?: Record<string, string> | null;
}

/**
 * The last log lines of a session, as they go into a crashed or lost event's
 * `log_tail` (already cut and formatted, oldest first; empty when this
 * process holds none). Wired from the log hub (service.ts), so the event
 * core and the statements never see the hub.
 */
export type LogTailOf = (sessionId: number) => string[];

export interface HostChange {
  /** False when no server has that id (servers are created by the API). */
  found: boolean;
  /** The status before this message, when found. */
  previousStatus: string | null;
  events: OutboxEvent[];
}

export interface SessionMove {
  sessionId: number;
  to: SessionState;
  /** Only stored on terminal states, as in the deployed service. */
  exitCode: number | null;
  /** The states this move is legal from (the state machine's answer). */
  from: SessionState[];
  /** The message's routing key, kept in the session's timeline. */
  routingKey?: string | null;
}

export interface SessionChange {
  /** Null when no session has that id (sessions are created by the API). */
  previousStatus: SessionState | null;
  moved: boolean;
  /** Same non-terminal state again: only updated_at was refreshed. */
  keptAlive: boolean;
  /** Sessions of the same sgc_id that this one stopped by starting to run. */
  superseded: number[];
  /** server_ports rows deleted because a session ended (this one or a superseded one). */
  portsFreed: number;
  events: OutboxEvent[];
}

export interface BackupUpdate {
  backupId: number;
  to: BackupState;
  s3Url: string | null;
  sizeBytes: number | null;
  errorMessage: string | null;
  /** The states this update is legal from. */
  from: BackupState[];
}

export type BackupChange =
  | { table: "missing" }
  | {
      table: "present";
      /** Null when no backup has that id. */
      previousStatus: BackupState | null;
      updated: boolean;
      /** The config's last_backup_at moved (completed, with a config). */
      configStamped: boolean;
    };

/** One statement per message kind; each commits its change and its outbox events together. */
export interface EventStore {
  setHostStatus(serverId: number, status: "online" | "offline"): Promise<HostChange>;
  recordHeartbeat(serverId: number): Promise<HostChange>;
  moveSession(move: SessionMove): Promise<SessionChange>;
  updateBackup(update: BackupUpdate): Promise<BackupChange>;
}
