/**
 * The archive in a local directory (LOG_ARCHIVE_DIR; the default store).
 * file_path is `file://<absolute path>`. node:fs/promises only, so the Deno
 * bundle runs it too.
 *
 * A put is atomic and never overwrites: the bytes go to a temporary file in
 * the object's directory, are fsynced, then hard-linked to the final name.
 * link(2) fails with EEXIST when the name is taken (rename would silently
 * replace it), and a reader or a crash sees either no object or the whole
 * one, never a partial file. The directory is fsynced after, so the name
 * survives a power cut before the row says `complete`. A crash between the
 * write and the link leaves a `.…tmp` file, which is never an object (keyOf
 * and the archive's keys never name one).
 */
import { randomUUID } from "node:crypto";
import { access, constants, link, mkdir, open, readFile, rmdir, unlink } from "node:fs/promises";
import { basename, dirname, join, resolve, sep } from "node:path";
import { ObjectExistsError, StorageError, checkKey, isValidKey, sameBytes, type ObjectStore } from "./store.ts";

const SCHEME = "file://";

const errno = (err: unknown): string | undefined => (err as NodeJS.ErrnoException | null)?.code;

export class DirectoryStore implements ObjectStore {
  readonly kind = "directory";
  /** Absolute path of the archive's root. */
  readonly root: string;

  constructor(dir: string) {
    this.root = resolve(dir);
  }

  get location(): string {
    return SCHEME + this.root;
  }

  #path(key: string): string {
    checkKey(key);
    return join(this.root, ...key.split("/"));
  }

  async put(key: string, gzipBytes: Uint8Array, signal?: AbortSignal): Promise<void> {
    const path = this.#path(key);
    // A concurrent delete may remove a directory that just became empty
    // between our mkdir and our write (ENOENT); creating it again is enough.
    for (let attempt = 1; ; attempt++) {
      signal?.throwIfAborted();
      try {
        return await this.#put(key, path, gzipBytes);
      } catch (err) {
        if (errno(err) !== "ENOENT" || attempt >= 3) throw wrap("put", key, err);
      }
    }
  }

  async #put(key: string, path: string, bytes: Uint8Array): Promise<void> {
    const dir = dirname(path);
    const created = await mkdir(dir, { recursive: true });
    const tmp = join(dir, `.${basename(path)}.${randomUUID()}.tmp`);
    const file = await open(tmp, "wx");
    try {
      await file.writeFile(bytes);
      await file.sync();
    } finally {
      await file.close();
    }
    try {
      await link(tmp, path);
    } catch (err) {
      if (errno(err) !== "EEXIST") throw err;
      // Ours from an earlier attempt (same bytes): done. Anything else: refuse.
      const existing = await readFile(path).catch(() => null);
      if (existing && sameBytes(existing, bytes)) return;
      throw new ObjectExistsError(key);
    } finally {
      await unlink(tmp).catch(() => {});
    }
    // New directories need their own entry in their parent made durable too.
    const top = created ? dirname(created) : dir;
    for (let d = dir; ; d = dirname(d)) {
      await syncDirectory(d);
      if (d === top || d === dirname(d)) break;
    }
  }

  async get(key: string, signal?: AbortSignal): Promise<Uint8Array | null> {
    const path = this.#path(key);
    signal?.throwIfAborted();
    try {
      const bytes = await readFile(path, { signal });
      return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    } catch (err) {
      if (errno(err) === "ENOENT" || errno(err) === "ENOTDIR") return null;
      throw wrap("get", key, err);
    }
  }

  async delete(key: string, signal?: AbortSignal): Promise<void> {
    const path = this.#path(key);
    signal?.throwIfAborted();
    try {
      await unlink(path);
    } catch (err) {
      if (errno(err) !== "ENOENT" && errno(err) !== "ENOTDIR") throw wrap("delete", key, err);
    }
    // Retention empties whole hours and sessions: remove the directories it
    // leaves empty, up to the root, so they do not pile up for ever. rmdir
    // refuses a non-empty one (ENOTEMPTY), which ends the walk.
    for (let d = dirname(path); d !== this.root && d.startsWith(this.root + sep); d = dirname(d)) {
      try {
        await rmdir(d);
      } catch {
        break;
      }
    }
  }

  filePath(key: string): string {
    checkKey(key);
    return `${SCHEME}${this.root}/${key}`;
  }

  keyOf(filePath: string): string | null {
    const prefix = `${SCHEME}${this.root}/`;
    if (!filePath.startsWith(prefix)) return null;
    const key = filePath.slice(prefix.length);
    return isValidKey(key) ? key : null;
  }

  async check(signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    try {
      await mkdir(this.root, { recursive: true });
      // W_OK also fails on a read-only mount (EROFS), root or not.
      await access(this.root, constants.R_OK | constants.W_OK);
    } catch (err) {
      throw new StorageError(`log archive directory ${this.root} is not writable: ${(err as Error).message}`, { cause: err });
    }
  }
}

/**
 * fsync of a directory makes the names in it durable. Best effort: some
 * platforms (and Deno's node:fs) cannot open a directory for it, and
 * without fsync the object is still safe from a process crash, only not
 * from a power cut.
 */
async function syncDirectory(dir: string): Promise<void> {
  let handle;
  try {
    handle = await open(dir, "r");
    await handle.sync();
  } catch {
    // See above.
  } finally {
    await handle?.close().catch(() => {});
  }
}

function wrap(op: string, key: string, err: unknown): Error {
  if (err instanceof ObjectExistsError || err instanceof StorageError) return err;
  return new StorageError(`log archive ${op} ${key}: ${(err as Error)?.message ?? String(err)}`, { code: errno(err), cause: err });
}
