/**
 * Backup status (CONTRACT §4, UPSTREAM.md §4): the small machine a backup
 * row follows, and the s3_url a real host reports. Pure.
 *
 *   pending -> running | completed | failed
 *   running -> completed | failed
 *   completed, failed: terminal
 *
 * Real hosts only ever send `completed` or `failed`; the machine exists so a
 * redelivered or late message can never move a finished backup back.
 */
import type { BackupState } from "./messages.ts";

const NEXT: Record<BackupState, readonly BackupState[]> = {
  pending: ["running", "completed", "failed"],
  running: ["completed", "failed"],
  completed: [],
  failed: [],
};

export type BackupMove = "advance" | "same" | "stale";

export function classifyBackupMove(from: BackupState, to: BackupState): BackupMove {
  if (from === to) return "same";
  return NEXT[from].includes(to) ? "advance" : "stale";
}

/** The states from which `to` is a legal step: the WHERE of the conditional UPDATE. */
export function backupPredecessors(to: BackupState): BackupState[] {
  return (Object.keys(NEXT) as BackupState[]).filter((from) => NEXT[from].includes(to));
}

/** Every key the scheduler hands a host starts with this (UPSTREAM.md §4). */
const KEY_PREFIX = "backups/";

/**
 * A real host reports `"s3://" + key` without the bucket
 * (`s3://backups/3/2/9.tar.gz`), while the ManManV2 API parses
 * `s3://<bucket>/<key>`. With the bucket known, a bucket-less URL is
 * completed; a URL that already names the bucket, or any other form, is
 * stored as sent.
 */
export function fullS3Url(url: string | undefined, bucket: string | undefined): string | undefined {
  if (url === undefined || !bucket || !url.startsWith("s3://")) return url;
  const rest = url.slice("s3://".length);
  if (rest.startsWith(`${bucket}/${KEY_PREFIX}`)) return url;
  return rest.startsWith(KEY_PREFIX) ? `s3://${bucket}/${rest}` : url;
}
