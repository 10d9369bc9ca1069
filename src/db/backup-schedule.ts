/**
 * The backup scheduler's statements (UPSTREAM.md §4) on the ManManV2 API's
 * tables. One scan at a time across replicas: `withScanLock` takes a
 * session-level pg_try_advisory_lock on a connection of its own and runs the
 * whole scan on that same connection, so if the connection dies the lock
 * and the scan's unfinished statement die together — another replica can
 * never scan beside a half-done scan. A replica that takes the lock after
 * a scan has ended sees everything that scan committed (its statements
 * start after the unlock), and a scan creates only what no backup of the
 * last cadence covers, so no backup is created twice.
 *
 * Times: the API's columns are TIMESTAMP without zone; everything here
 * compares and writes LOCALTIMESTAMP (the session's wall clock), the same
 * clock the status statement's `now()` writes last_backup_at with.
 */
import postgres from "postgres";
import type { BackupTarget } from "../events/backup-schedule.ts";
import type { OutboxEvent } from "../events/store.ts";
import type { Sql } from "./pool.ts";

/** "mmbackup" in ASCII: recognisable in pg_locks, unlike the other keys (db/migrate.ts, the log archive's). */
const SCAN_LOCK_KEY = 0x6d6d6261636b7570n;

// The scan connection's own client type: ids come back in JSON, so no bigint parser is needed.
export type ScanSql = postgres.Sql;

/** Which of `tables` this database lacks. */
export async function missingTables(sql: Sql, tables: readonly string[]): Promise<string[]> {
  const rows = await sql<{ name: string }[]>`
    SELECT t AS name FROM unnest(${sql.array([...tables])}::text[]) t WHERE to_regclass(t) IS NULL ORDER BY t`;
  return rows.map((r) => r.name);
}

export interface ScanLockOptions {
  url: string;
  /** Connect and statement deadline, ms. */
  timeoutMs: number;
}

/** Runs `scan` holding the scan lock; `{ locked: false }` when another replica holds it. */
export async function withScanLock<T>(options: ScanLockOptions, scan: (sql: ScanSql) => Promise<T>): Promise<{ locked: true; value: T } | { locked: false }> {
  const sql = postgres(options.url, {
    // One connection: the lock belongs to it, and the scan must run on it.
    max: 1,
    connect_timeout: Math.max(1, Math.ceil(options.timeoutMs / 1000)),
    fetch_types: false,
    onnotice: () => {},
    connection: { application_name: "manman-processor-backup-scan", statement_timeout: options.timeoutMs },
  });
  try {
    const [row] = await sql<{ locked: boolean }[]>`SELECT pg_try_advisory_lock(${SCAN_LOCK_KEY.toString()}::bigint) AS locked`;
    if (!row?.locked) return { locked: false };
    const value = await scan(sql);
    // Ending the connection would release it too; unlocking first lets the
    // next replica in without waiting for the server to see the socket close.
    await sql`SELECT pg_advisory_unlock(${SCAN_LOCK_KEY.toString()}::bigint)`.catch(() => {});
    return { locked: true, value };
  } finally {
    await sql.end({ timeout: 1 }).catch(() => {});
  }
}

/**
 * Every (backup config, game server config) pair to back up now. The due
 * configs are upstream's ListDue (R/backup.go), verbatim but for the clock;
 * each is backed up on every game server config of its volume's game config
 * that has a session (its latest by session_id, any status), as upstream's
 * job does — without its first-100-SGCs cap. A pair already given a backup
 * within the last cadence is left out (upstream's River job is unique per
 * config and cadence): a pending, running or failed backup is retried one
 * cadence after it was created; a completed one moved last_backup_at, so
 * the config is not due before then.
 */
export async function listDueTargets(sql: ScanSql): Promise<BackupTarget[]> {
  const [row] = await sql<{ targets: BackupTarget[] }[]>`
    WITH due AS (
      SELECT DISTINCT bc.backup_config_id
      FROM backup_configs bc
      JOIN game_config_volumes gcv ON gcv.volume_id = bc.volume_id
      JOIN game_configs gc ON gc.config_id = gcv.config_id
      JOIN server_game_configs sgc ON sgc.game_config_id = gc.config_id
      JOIN sessions s ON s.sgc_id = sgc.sgc_id
      WHERE bc.enabled = true
        AND bc.deleted_at IS NULL
        AND (bc.last_backup_at IS NULL OR bc.last_backup_at + (bc.cadence_minutes * INTERVAL '1 minute') <= LOCALTIMESTAMP)
        AND (s.ended_at IS NULL OR s.ended_at >= COALESCE(bc.last_backup_at, 'epoch'::timestamp))
    ), targets AS (
      SELECT bc.backup_config_id, sgc.sgc_id, sgc.server_id, latest.session_id, gcv.volume_id,
             gcv.name AS volume_name, gcv.volume_type, gcv.host_subpath, bc.backup_path,
             COALESCE(acts.list, '[]'::json) AS actions
      FROM due
      JOIN backup_configs bc ON bc.backup_config_id = due.backup_config_id
      JOIN game_config_volumes gcv ON gcv.volume_id = bc.volume_id
      JOIN server_game_configs sgc ON sgc.game_config_id = gcv.config_id
      CROSS JOIN LATERAL (
        SELECT session_id FROM sessions WHERE sgc_id = sgc.sgc_id ORDER BY session_id DESC LIMIT 1
      ) latest
      LEFT JOIN LATERAL (
        -- As upstream: in display_order (action_id breaks ties, which
        -- upstream leaves to chance); a soft-deleted definition is not
        -- found by the API's lookup, so it is left out.
        SELECT json_agg(json_build_object('actionId', a.action_id, 'template', ad.command_template)
                        ORDER BY a.display_order, a.action_id) AS list
        FROM backup_config_actions a
        JOIN action_definitions ad ON ad.action_id = a.action_id AND ad.deleted_at IS NULL
        WHERE a.backup_config_id = bc.backup_config_id
      ) acts ON true
      WHERE NOT EXISTS (
        SELECT 1 FROM backups b
        WHERE b.backup_config_id = bc.backup_config_id AND b.server_game_config_id = sgc.sgc_id
          AND b.created_at > LOCALTIMESTAMP - (bc.cadence_minutes * INTERVAL '1 minute')
      )
    )
    SELECT COALESCE(json_agg(json_build_object(
             'backupConfigId', backup_config_id, 'sgcId', sgc_id, 'serverId', server_id, 'sessionId', session_id,
             'volumeId', volume_id, 'volumeName', volume_name, 'volumeType', volume_type, 'hostSubpath', host_subpath,
             'backupPath', backup_path, 'actions', actions) ORDER BY backup_config_id, sgc_id), '[]'::json) AS targets
    FROM targets`;
  return row!.targets;
}

/** `n` backup ids from the table's own sequence, taken before the rows exist so the URL can be signed for their keys. */
export async function reserveBackupIds(sql: ScanSql, n: number): Promise<number[]> {
  if (n === 0) return [];
  const rows = await sql<{ id: string }[]>`
    SELECT nextval(pg_get_serial_sequence('backups', 'backup_id'))::text AS id FROM generate_series(1, ${n})`;
  return rows.map((r) => Number(r.id));
}

/** A backup row to create and the command that goes with it. */
export interface NewBackup {
  backupId: number;
  sessionId: number;
  sgcId: number;
  backupConfigId: number;
  volumeId: number;
  routingKey: string;
  /** The command's exact body (its key order is the host's struct order, which JSONB would lose). */
  body: string;
}

/**
 * In ONE statement: the `pending` backups rows and, in the outbox, their
 * commands for `exchange` with `properties` — so no row exists without its
 * command and no command without its row. The outbox relay publishes
 * whatever the caller's own publish does not. Returns the outbox rows.
 */
export async function insertBackupsWithCommands(
  sql: ScanSql,
  backups: readonly NewBackup[],
  exchange: string,
  properties: Record<string, string>,
): Promise<OutboxEvent[]> {
  if (backups.length === 0) return [];
  const [row] = await sql<{ events: OutboxEvent[] }[]>`
    WITH input AS (
      SELECT * FROM json_to_recordset(${sql.json(backups as unknown as postgres.JSONValue)}::json) AS r(
        "backupId" bigint, "sessionId" bigint, "sgcId" bigint, "backupConfigId" bigint, "volumeId" bigint,
        "routingKey" text, body text)
    ), created AS (
      INSERT INTO backups (backup_id, session_id, server_game_config_id, backup_config_id, volume_id, status, created_at)
      SELECT "backupId", "sessionId", "sgcId", "backupConfigId", "volumeId", 'pending', LOCALTIMESTAMP FROM input
      RETURNING backup_id
    ), commands AS (
      INSERT INTO processor_outbox (routing_key, payload, exchange, body, properties)
      SELECT i."routingKey", i.body::jsonb, ${exchange}, i.body, ${sql.json(properties)}::jsonb
      FROM input i JOIN created c ON c.backup_id = i."backupId"
      ORDER BY i."backupId"
      RETURNING id, routing_key, payload, exchange, body, properties
    )
    SELECT COALESCE(json_agg(commands ORDER BY id), '[]'::json) AS events FROM commands`;
  return row!.events;
}

/**
 * Fails every backup `pending` or `running` for longer than `hours` since
 * its creation, in one statement; rows another statement holds are left for
 * the next sweep (SKIP LOCKED), so replicas sweeping together and a status
 * message racing the sweep never collide. Returns the ids it failed.
 */
export async function failStaleBackups(
  sql: Sql,
  hours: number,
  errors: { pending: string; running: string },
): Promise<number[]> {
  const rows = await sql<{ backup_id: bigint }[]>`
    WITH stuck AS (
      SELECT backup_id FROM backups
      WHERE status IN ('pending', 'running') AND created_at < LOCALTIMESTAMP - make_interval(hours => ${hours})
      ORDER BY backup_id FOR UPDATE SKIP LOCKED
    )
    UPDATE backups b SET status = 'failed',
      error_message = CASE b.status WHEN 'running' THEN ${errors.running}::text ELSE ${errors.pending}::text END
    FROM stuck WHERE b.backup_id = stuck.backup_id
    RETURNING b.backup_id`;
  return rows.map((r) => Number(r.backup_id));
}
