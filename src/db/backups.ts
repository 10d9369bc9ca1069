/**
 * The backup status statement (CONTRACT §4): the row's status, s3_url,
 * size_bytes and error_message, and on `completed` its config's
 * last_backup_at, in one statement. `backups` and `backup_configs` belong to
 * the ManManV2 API's schema; a standalone database has neither, and says so.
 */
import type { Sql } from "./pool.ts";
import type { BackupState } from "../events/messages.ts";
import type { BackupChange, BackupUpdate } from "../events/store.ts";

export async function updateBackup(sql: Sql, u: BackupUpdate): Promise<BackupChange> {
  const completed = u.to === "completed";
  try {
    // s3_url and size_bytes keep what the row has when the message has none
    // (a `failed` carries neither); error_message is the message's, so a
    // completed backup clears an earlier error.
    const [row] = await sql<{ previous: BackupState | null; updated: boolean; stamped: boolean }[]>`
      WITH cur AS (
        SELECT backup_id, status FROM backups WHERE backup_id = ${u.backupId} FOR UPDATE
      ), updated AS (
        UPDATE backups b SET
          status = ${u.to},
          s3_url = COALESCE(${u.s3Url}::text, b.s3_url),
          size_bytes = COALESCE(${u.sizeBytes}::bigint, b.size_bytes),
          error_message = ${u.errorMessage}::text
        FROM cur
        WHERE b.backup_id = cur.backup_id AND cur.status = ANY(${sql.array(u.from)}::text[])
        RETURNING b.backup_config_id, b.deleted_at
      ), stamped AS (
        -- A soft-deleted backup does not count as the config's last one (as upstream).
        UPDATE backup_configs c SET last_backup_at = now(), updated_at = now()
        FROM updated
        WHERE ${completed}::boolean AND c.backup_config_id = updated.backup_config_id AND updated.deleted_at IS NULL
        RETURNING 1
      )
      SELECT (SELECT status FROM cur) AS previous,
             EXISTS (SELECT 1 FROM updated) AS updated,
             EXISTS (SELECT 1 FROM stamped) AS stamped`;
    return { table: "present", previousStatus: row!.previous, updated: row!.updated, configStamped: row!.stamped };
  } catch (err) {
    // 42P01 undefined_table: not a ManManV2 database.
    if ((err as { code?: string }).code === "42P01") return { table: "missing" };
    throw err;
  }
}
