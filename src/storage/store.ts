/**
 * Where the log archive's gzip objects are kept: a directory by default, an
 * S3-compatible bucket when S3_BUCKET is set (issue 10, CONTRACT §6). The
 * archive writes each object once and never rewrites it, so the stores
 * refuse to overwrite: see ObjectExistsError.
 */

export interface ObjectStore {
  /** "directory" or "s3", for logs and metrics. */
  readonly kind: "directory" | "s3";
  /** Where objects go, for the startup log: `file:///…` or `s3://bucket`. */
  readonly location: string;
  /**
   * Stores `gzipBytes` under `key`, durably before it resolves. Resolves
   * also when the key already holds exactly this content (an earlier attempt
   * of the same put that landed, e.g. a request whose answer was lost to a
   * timeout, so retrying is safe); rejects with ObjectExistsError when it
   * holds anything else.
   */
  put(key: string, gzipBytes: Uint8Array, signal?: AbortSignal): Promise<void>;
  /** The object's gzip bytes, or null when there is no such object. */
  get(key: string, signal?: AbortSignal): Promise<Uint8Array | null>;
  /** Removes the object; resolves also when it was already gone (retention may retry). */
  delete(key: string, signal?: AbortSignal): Promise<void>;
  /** What goes into log_references.file_path for `key`. */
  filePath(key: string): string;
  /** The key of a file_path this store wrote, null for any other (another bucket, directory or scheme). */
  keyOf(filePath: string): string | null;
  /** Resolves when the store can be written now; rejects with the reason otherwise (readiness). */
  check(signal?: AbortSignal): Promise<void>;
}

/** A put found a different object under its key. The archive never rewrites an object. */
export class ObjectExistsError extends Error {
  constructor(readonly key: string) {
    super(`an object with different content already exists at ${key}; archive objects are never overwritten`);
    this.name = "ObjectExistsError";
  }
}

/** A store operation failed; S3 failures carry the HTTP status and S3's error code. */
export class StorageError extends Error {
  readonly status?: number;
  readonly code?: string;
  constructor(message: string, details: { status?: number; code?: string; cause?: unknown } = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = "StorageError";
    this.status = details.status;
    this.code = details.code;
  }
}

/**
 * Keys are ours (src/logs/archive/keys.ts), but a key also comes back from
 * keyOf(file_path) of a database row, so both stores refuse anything that
 * could leave the archive's directory or mean different things to different
 * stores: empty, over S3's 1024-byte limit, a leading "/", empty, "." or ".."
 * segments, backslashes and control characters.
 */
export function checkKey(key: string): void {
  const ok =
    key.length > 0 &&
    new TextEncoder().encode(key).length <= 1024 &&
    !key.startsWith("/") &&
    !/[\\\u0000-\u001f\u007f]/.test(key) &&
    key.split("/").every((s) => s !== "" && s !== "." && s !== "..");
  if (!ok) throw new StorageError(`invalid object key ${JSON.stringify(key)}`);
}

/** True when `key` is one checkKey accepts. */
export function isValidKey(key: string): boolean {
  try {
    checkKey(key);
    return true;
  } catch {
    return false;
  }
}

/** Equal bytes (the idempotent-retry test of put). */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
