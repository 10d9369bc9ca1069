/**
 * The backup scheduler's decisions (UPSTREAM.md §4), pure: whether the
 * scheduler can run, the object key, the command a host manager receives
 * (field for field as upstream's BackupCommand), the pre-action commands,
 * and the message a stale backup is failed with. The SQL is in
 * db/backup-schedule.ts, the signing in storage/presign.ts, the loop in
 * event-pipeline/backup-scheduler.ts.
 */
import { renderWithoutData } from "./go-template.ts";

/**
 * One hour, upstream's figure for all three lifetimes of a command: the
 * pre-signed URL (P/backup_scheduler.go PresignPutURL 1 h), the AMQP
 * expiration (A/command_publisher.go backupCommandExpiry) and the host's
 * own check, which drops a command whose created_at is older
 * (H/rmq/consumer.go:184-196).
 */
export const BACKUP_COMMAND_TTL_MS = 3_600_000;
export const BACKUP_CONTENT_TYPE = "application/gzip";

/** What the scheduler needs to know to switch itself on (config and catalog, read by the caller). */
export interface SchedulerPrerequisites {
  s3Bucket?: string;
  s3AccessKey?: string;
  s3SecretKey?: string;
  /** API tables the scheduler reads that this database lacks (only the ManManV2 API's migrations create them). */
  missingTables: readonly string[];
}

export type SchedulerSwitch = { enabled: true } | { enabled: false; reason: string };

export function schedulerSwitch(p: SchedulerPrerequisites): SchedulerSwitch {
  const unset = [
    ["S3_BUCKET", p.s3Bucket],
    ["S3_ACCESS_KEY", p.s3AccessKey],
    ["S3_SECRET_KEY", p.s3SecretKey],
  ].filter(([, v]) => !v).map(([name]) => name);
  if (unset.length > 0) return { enabled: false, reason: `S3 is not configured (${unset.join(", ")} unset): hosts need a pre-signed upload URL` };
  if (p.missingTables.length > 0) {
    return { enabled: false, reason: `this database has no ${p.missingTables.join(", ")} (the ManManV2 API's migrations create them)` };
  }
  return { enabled: true };
}

/** The API tables the scan reads and writes; all must exist. */
export const SCHEDULER_TABLES = [
  "backup_configs", "game_config_volumes", "server_game_configs", "sessions",
  "backups", "backup_config_actions", "action_definitions",
] as const;

/** Upstream's key layout: `backups/<sgc_id>/<backup_config_id>/<backup_id>.tar.gz`. */
export function backupKey(sgcId: number, backupConfigId: number, backupId: number): string {
  return `backups/${sgcId}/${backupConfigId}/${backupId}.tar.gz`;
}

export function backupCommandRoutingKey(serverId: number): string {
  return `command.host.${serverId}.backup`;
}

/** One due (backup config, game server config) pair, as the scan found it. */
export interface BackupTarget {
  backupConfigId: number;
  sgcId: number;
  serverId: number;
  /** The SGC's latest session by session_id, whatever its status (as upstream). */
  sessionId: number;
  volumeId: number;
  volumeName: string;
  volumeType: string;
  hostSubpath: string | null;
  backupPath: string;
  /** The config's pre-actions in display order (soft-deleted definitions left out). */
  actions: readonly { actionId: number; template: string }[];
}

export interface BackupCommand {
  backupId: number;
  target: BackupTarget;
  s3Key: string;
  presignedUrl: string;
  preActionCommands: readonly string[];
  createdAt: Date;
}

/**
 * The body of `command.host.<server_id>.backup`, keys in upstream's struct
 * order (H/rmq/messages.go BackupCommand). Unlike upstream's scheduler,
 * `volume_type` and `volume_name` are filled in (the host needs them to back
 * up a named volume) and `created_at` is the real time, so the host's
 * one-hour expiry check applies.
 */
export function renderBackupCommand(c: BackupCommand): string {
  return JSON.stringify({
    backup_id: c.backupId,
    sgc_id: c.target.sgcId,
    volume_type: c.target.volumeType,
    volume_host_path: c.target.hostSubpath ?? "",
    volume_name: c.target.volumeName,
    backup_path: c.target.backupPath,
    s3_key: c.s3Key,
    presigned_url: c.presignedUrl,
    pre_action_commands: [...c.preActionCommands],
    created_at: c.createdAt.toISOString(),
  });
}

/** The AMQP properties a command is published with (beside persistence and content type). */
export const BACKUP_COMMAND_PROPERTIES = { expiration: String(BACKUP_COMMAND_TTL_MS) } as const;

export interface PreActions {
  commands: string[];
  /** Actions left out, as upstream leaves out a template it cannot render. */
  skipped: { actionId: number; error: string }[];
}

/** Renders each pre-action template with nil data (go-template.ts); unrenderable ones are skipped. */
export function renderPreActions(actions: readonly { actionId: number; template: string }[]): PreActions {
  const out: PreActions = { commands: [], skipped: [] };
  for (const a of actions) {
    const r = renderWithoutData(a.template);
    if (r.ok) out.commands.push(r.text);
    else out.skipped.push({ actionId: a.actionId, error: r.error });
  }
  return out;
}

/** The error_message of a backup the stale sweep fails. */
export function staleBackupError(hours: number, previous: "pending" | "running"): string {
  return `no completed or failed status from the host within ${hours} h of the backup's creation (it was ${previous}); marked failed by the processor's stale sweep`;
}

