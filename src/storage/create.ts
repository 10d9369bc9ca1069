/**
 * The archive's store from the settings: S3 when S3_BUCKET is set, else the
 * directory LOG_ARCHIVE_DIR (issue 10). Takes the settings by shape, not
 * config.ts's type, so this adapter imports nothing above it; a Config fits.
 */
import { DirectoryStore } from "./directory.ts";
import { S3Store } from "./s3.ts";
import { StorageError, type ObjectStore } from "./store.ts";

export interface ObjectStoreSettings {
  logArchiveDir: string;
  s3Bucket?: string;
  s3Region?: string;
  s3Endpoint?: string;
  s3AccessKey?: string;
  s3SecretKey?: string;
}

export function createObjectStore(settings: ObjectStoreSettings): ObjectStore {
  if (!settings.s3Bucket) return new DirectoryStore(settings.logArchiveDir);
  // Only static keys are signed with (no SDK, so no instance roles or
  // profiles): say so at startup instead of failing every upload.
  if (!settings.s3AccessKey || !settings.s3SecretKey) {
    throw new StorageError("S3_BUCKET is set but S3_ACCESS_KEY or S3_SECRET_KEY is not: the log archive needs both to sign its requests");
  }
  return new S3Store({
    bucket: settings.s3Bucket,
    region: settings.s3Region,
    endpoint: settings.s3Endpoint,
    accessKeyId: settings.s3AccessKey,
    secretAccessKey: settings.s3SecretKey,
  });
}
