/**
 * A real S3-compatible server for the archive's tests: s3rver (npm
 * devDependency; it runs under Node). In CI `.ci/run` starts one and exports
 * S3_TEST_ENDPOINT (with S3_TEST_ACCESS_KEY / S3_TEST_SECRET_KEY); without
 * it each test file starts its own on a free port (the OS picks: `-p 0`) with
 * a temporary directory. Either way each test file gets a bucket of its own
 * and removes it afterwards.
 */
import { afterAll, beforeAll } from "bun:test";
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AwsClient } from "aws4fetch";
import type { S3StoreOptions } from "../../src/storage/s3.ts";

// s3rver's one built-in account (lib/models/account.js).
const S3RVER_KEY = "S3RVER";
const S3RVER_BIN = join(import.meta.dir, "..", "..", "node_modules", "s3rver", "bin", "s3rver.js");
// s3rver is listening within a second on an idle machine; 20 s covers a busy 2-core CI box.
const START_TIMEOUT_MS = 20_000;

export interface S3TestServer {
  /** http://127.0.0.1:<port>, path-style. */
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  /** Stops the server when this process started it; nothing for CI's shared one. */
  stop(): Promise<void>;
}

export async function startS3Server(): Promise<S3TestServer> {
  const shared = process.env.S3_TEST_ENDPOINT;
  const creds = {
    accessKeyId: process.env.S3_TEST_ACCESS_KEY || S3RVER_KEY,
    secretAccessKey: process.env.S3_TEST_SECRET_KEY || S3RVER_KEY,
    region: "us-east-1",
  };
  if (shared) return { endpoint: shared.replace(/\/+$/, ""), ...creds, stop: async () => {} };

  const dir = await mkdtemp(join(tmpdir(), "s3rver-"));
  const child = spawn("node", [S3RVER_BIN, "-d", dir, "-a", "127.0.0.1", "-p", "0", "-s"], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`s3rver did not start in ${START_TIMEOUT_MS} ms: ${output}`)), START_TIMEOUT_MS);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const m = /listening on [\d.]+:(\d+)/.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.once("error", (err) => {
      clearTimeout(timer);
      reject(new Error(`could not run s3rver under node: ${err.message}`));
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`s3rver exited (${code}) before listening: ${output}`));
    });
  });
  return {
    endpoint: `http://127.0.0.1:${port}`,
    ...creds,
    stop: async () => {
      child.kill("SIGTERM");
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function client(server: S3TestServer): AwsClient {
  return new AwsClient({ accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey, service: "s3", region: server.region, retries: 0 });
}

/** A signed request straight to the server (bucket set-up, raw checks), outside the code under test. */
export async function s3Request(server: S3TestServer, method: string, path: string, init: { body?: Uint8Array; headers?: Record<string, string> } = {}): Promise<Response> {
  const signed = await client(server).sign(`${server.endpoint}${path}`, { method, headers: init.headers, body: init.body as Uint8Array<ArrayBuffer> | undefined });
  return fetch(signed, { decompress: false, signal: AbortSignal.timeout(10_000) } as RequestInit);
}

export async function createBucket(server: S3TestServer, prefix = "test"): Promise<string> {
  // S3 bucket names: 3-63 lowercase letters, digits and hyphens.
  const bucket = `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`.toLowerCase();
  const res = await s3Request(server, "PUT", `/${bucket}`);
  if (!res.ok) throw new Error(`creating bucket ${bucket}: HTTP ${res.status} ${await res.text()}`);
  return bucket;
}

/** Empties and removes a bucket (CI's server is shared by every test file). */
export async function removeBucket(server: S3TestServer, bucket: string): Promise<void> {
  for (;;) {
    const list = await s3Request(server, "GET", `/${bucket}?list-type=2`);
    if (list.status === 404) return;
    const keys = [...(await list.text()).matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => m[1]);
    if (keys.length === 0) break;
    for (const key of keys) await s3Request(server, "DELETE", `/${bucket}/${key.split("/").map(encodeURIComponent).join("/")}`);
  }
  await s3Request(server, "DELETE", `/${bucket}`);
}

export interface S3TestBucket {
  readonly server: S3TestServer;
  readonly bucket: string;
  /** S3Store options for this bucket; override what a test needs (a wrong secret, a short timeout). */
  storeOptions(overrides?: Partial<S3StoreOptions>): S3StoreOptions;
}

/** For a test file: a server (CI's or its own) and a fresh bucket, both gone after the file's tests. */
export function useS3Server(prefix = "test"): S3TestBucket {
  let server: S3TestServer | undefined;
  let bucket: string | undefined;
  beforeAll(async () => {
    server = await startS3Server();
    bucket = await createBucket(server, prefix);
  });
  afterAll(async () => {
    if (server && bucket) await removeBucket(server, bucket).catch(() => {});
    await server?.stop();
  });
  const ready = () => {
    if (!server || !bucket) throw new Error("useS3Server: the S3 server is not started yet (use it inside a test)");
    return { server, bucket };
  };
  return {
    get server() {
      return ready().server;
    },
    get bucket() {
      return ready().bucket;
    },
    storeOptions(overrides = {}) {
      const { server, bucket } = ready();
      return { bucket, endpoint: server.endpoint, region: server.region, accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey, ...overrides };
    },
  };
}
