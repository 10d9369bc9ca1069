/**
 * The log archive's object stores (issue 10): a directory and a real
 * S3-compatible server (s3rver; see test/support/s3.ts).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AwsV4Signer } from "aws4fetch";
import { createObjectStore } from "../src/storage/create.ts";
import { DirectoryStore } from "../src/storage/directory.ts";
import { S3Store } from "../src/storage/s3.ts";
import { ObjectExistsError, StorageError, type ObjectStore } from "../src/storage/store.ts";
import { s3Request, useS3Server } from "./support/s3.ts";
import { startSigV4Gate, verifySigV4 } from "./support/sigv4.ts";

const text = (s: string) => new TextEncoder().encode(s);
const gz = (s: string) => Bun.gzipSync(text(s));
const gunzipText = (b: Uint8Array) => new TextDecoder().decode(Bun.gunzipSync(b as Uint8Array<ArrayBuffer>));
const KEY = "logs/sgc-3/session-7/2026/01/02/15/04.log.gz";
const LINES = "[2026-01-02T15:04:05.123Z] [stdout] Server started\n[2026-01-02T15:04:06.000Z] [stderr] oops\n";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "archive-store-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const s3 = useS3Server("store");

/** The behaviour both stores share, run on each. */
function sharedBehaviour(name: string, make: () => ObjectStore) {
  describe(`${name} store`, () => {
    test("an object put comes back byte for byte, then is gone after delete", async () => {
      const store = make();
      const bytes = gz(LINES);
      await store.put(KEY, bytes);
      const got = await store.get(KEY);
      expect(got).not.toBeNull();
      expect(gunzipText(got!)).toBe(LINES);
      expect(Buffer.from(got!).equals(Buffer.from(bytes))).toBe(true);
      await store.delete(KEY);
      expect(await store.get(KEY)).toBeNull();
    });

    test("a missing object reads as null and deleting it again is fine", async () => {
      const store = make();
      expect(await store.get("logs/sgc-1/session-1/2000/01/01/00/00.log.gz")).toBeNull();
      await store.delete("logs/sgc-1/session-1/2000/01/01/00/00.log.gz");
    });

    test("an existing object is never overwritten, but the same put again is accepted", async () => {
      const store = make();
      const key = "logs/sgc-3/session-7/2026/01/02/15/05.log.gz";
      const first = gz("first\n");
      await store.put(key, first);
      // A retry of the same put (its answer lost to a timeout, say) succeeds…
      await store.put(key, first);
      // …different content is refused and the first object stays.
      const err = await store.put(key, gz("second\n")).catch((e) => e);
      expect(err).toBeInstanceOf(ObjectExistsError);
      expect(err.key).toBe(key);
      expect(gunzipText((await store.get(key))!)).toBe("first\n");
    });

    test("file_path and keyOf are each other's inverse, and foreign paths have no key", () => {
      const store = make();
      const path = store.filePath(KEY);
      expect(store.keyOf(path)).toBe(KEY);
      expect(store.keyOf("s3://some-other-bucket/" + KEY)).toBeNull();
      expect(store.keyOf("file:///elsewhere/" + KEY)).toBeNull();
      expect(store.keyOf(path.replace(KEY, "logs/../../etc/passwd"))).toBeNull();
    });

    test("keys that could escape the archive are refused", async () => {
      const store = make();
      for (const key of ["", "/abs", "logs/../x", "logs//x", "logs/./x", "a\\b", "a\nb"]) {
        await expect(store.put(key, gz("x"))).rejects.toBeInstanceOf(StorageError);
        await expect(store.get(key)).rejects.toBeInstanceOf(StorageError);
      }
    });

    test("the readiness check passes while the store can be written", async () => {
      await make().check();
    });
  });
}

sharedBehaviour("directory", () => new DirectoryStore(dir));
sharedBehaviour("S3", () => new S3Store(s3.storeOptions()));

describe("directory store", () => {
  test("file_path is file:// and the absolute path of the object", () => {
    const store = new DirectoryStore(dir);
    expect(store.filePath(KEY)).toBe(`file://${dir}/${KEY}`);
    expect(new DirectoryStore("./relative/archive").filePath(KEY)).toBe(`file://${process.cwd()}/relative/archive/${KEY}`);
  });

  test("concurrent puts of one key: exactly one lands, whole, and no temporary file is left", async () => {
    const store = new DirectoryStore(dir);
    const key = "logs/sgc-9/session-9/2026/01/02/15/06.log.gz";
    const bodies = Array.from({ length: 8 }, (_, i) => gz(`writer ${i}\n`.repeat(10_000)));
    const results = await Promise.allSettled(bodies.map((b) => store.put(key, b)));
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    for (const r of results) if (r.status === "rejected") expect(r.reason).toBeInstanceOf(ObjectExistsError);
    const winner = results.findIndex((r) => r.status === "fulfilled");
    expect(gunzipText((await store.get(key))!)).toBe(`writer ${winner}\n`.repeat(10_000));
    expect(await readdir(join(dir, "logs/sgc-9/session-9/2026/01/02/15"))).toEqual(["06.log.gz"]);
  });

  test("deleting the last object of an hour removes the directories it leaves empty, not the root", async () => {
    const root = await mkdtemp(join(tmpdir(), "archive-prune-"));
    const store = new DirectoryStore(root);
    await store.put("logs/sgc-1/session-2/2026/01/02/15/04.log.gz", gz("a"));
    await store.put("logs/sgc-1/session-3/2026/01/02/15/04.log.gz", gz("b"));
    await store.delete("logs/sgc-1/session-2/2026/01/02/15/04.log.gz");
    expect(await readdir(join(root, "logs/sgc-1"))).toEqual(["session-3"]);
    await store.delete("logs/sgc-1/session-3/2026/01/02/15/04.log.gz");
    expect(await readdir(root)).toEqual([]);
    await rm(root, { recursive: true });
  });

  test("a directory that cannot be created fails the readiness check with the reason", async () => {
    const file = join(dir, "a-file");
    await writeFile(file, "not a directory");
    const err = await new DirectoryStore(join(file, "archive")).check().catch((e) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect(err.message).toMatch(/not writable/);
  });
});

describe("S3 store", () => {
  test("objects are stored as upstream stores them: gzip bytes, Content-Type and Content-Encoding", async () => {
    const store = new S3Store(s3.storeOptions());
    const key = "logs/sgc-3/session-8/2026/01/02/15/04.log.gz";
    await store.put(key, gz(LINES));
    const res = await s3Request(s3.server, "GET", `/${s3.bucket}/${key}`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/gzip");
    expect(res.headers.get("content-encoding")).toBe("gzip");
    expect(gunzipText(new Uint8Array(await res.arrayBuffer()))).toBe(LINES);
  });

  test("file_path is s3://<bucket>/<key>, as the ManManV2 API reads it", () => {
    const store = new S3Store(s3.storeOptions());
    expect(store.filePath(KEY)).toBe(`s3://${s3.bucket}/${KEY}`);
    expect(store.location).toBe(`s3://${s3.bucket}`);
  });

  test("a missing bucket is an error with S3's status and code, not an empty read", async () => {
    const store = new S3Store(s3.storeOptions({ bucket: "no-such-bucket-here" }));
    const err = await store.get(KEY).catch((e) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect(err.status).toBe(404);
    expect(err.code).toBe("NoSuchBucket");
    expect(err.message).toContain("s3://no-such-bucket-here/" + KEY);
    await expect(store.check()).rejects.toMatchObject({ status: 404 });
  });

  test("an unknown access key is refused by the server", async () => {
    const store = new S3Store(s3.storeOptions({ accessKeyId: "NOT-A-KEY" }));
    await expect(store.get("logs/sgc-1/session-1/2026/01/02/15/07.log.gz")).rejects.toMatchObject({ status: 403, code: "InvalidAccessKeyId" });
    // HEAD answers carry no body, so only the status says why.
    await expect(store.put("logs/sgc-1/session-1/2026/01/02/15/07.log.gz", gz("x"))).rejects.toMatchObject({ status: 403 });
  });

  test("requests are really signed: a verifying gate in front of s3rver passes the right secret and refuses a wrong one", async () => {
    const gate = startSigV4Gate(s3.server.endpoint, { [s3.server.accessKeyId]: s3.server.secretAccessKey });
    try {
      const key = "logs/sgc-3/session-9/2026/01/02/15/04.log.gz";
      const good = new S3Store(s3.storeOptions({ endpoint: gate.endpoint }));
      await good.check();
      await good.put(key, gz(LINES));
      expect(gunzipText((await good.get(key))!)).toBe(LINES);
      await good.delete(key);
      expect(gate.refused).toBe(0);

      const wrong = new S3Store(s3.storeOptions({ endpoint: gate.endpoint, secretAccessKey: "not-the-secret" }));
      const err = await wrong.put(key, gz(LINES)).catch((e) => e);
      expect(err).toBeInstanceOf(StorageError);
      expect(err).toMatchObject({ status: 403 });
      await expect(wrong.get(key)).rejects.toMatchObject({ status: 403, code: "SignatureDoesNotMatch" });
      expect(gate.refused).toBeGreaterThan(0);
      // Nothing reached the server.
      expect(await good.get(key)).toBeNull();
    } finally {
      await gate.stop();
    }
  });

  test("the gate's signature check agrees with AWS's published example", async () => {
    // AWS S3 docs, "Signature Calculations for the Authorization Header",
    // GET Object example: its documented signature is f0e8bdb8….
    const secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    const headers = new Headers({
      host: "examplebucket.s3.amazonaws.com",
      range: "bytes=0-9",
      "x-amz-content-sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
      "x-amz-date": "20130524T000000Z",
      authorization:
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
    });
    const req = { method: "GET", url: new URL("https://examplebucket.s3.amazonaws.com/test.txt"), headers, body: new Uint8Array() };
    const at = Date.parse("2013-05-24T00:00:00Z");
    expect(verifySigV4(req, { AKIAIOSFODNN7EXAMPLE: secret }, at)).toEqual({ ok: true });
    expect(verifySigV4(req, { AKIAIOSFODNN7EXAMPLE: secret + "x" }, at)).toMatchObject({ ok: false, code: "SignatureDoesNotMatch" });
    // And aws4fetch, which the store signs with, produces that same signature.
    const signer = new AwsV4Signer({
      method: "GET",
      url: "https://examplebucket.s3.amazonaws.com/test.txt",
      headers: { range: "bytes=0-9", "x-amz-content-sha256": headers.get("x-amz-content-sha256")! },
      accessKeyId: "AKIAIOSFODNN7EXAMPLE",
      secretAccessKey: secret,
      service: "s3",
      region: "us-east-1",
      datetime: "20130524T000000Z",
      // aws4fetch leaves Range unsigned by default; the example signs it.
      allHeaders: true,
    });
    expect((await signer.sign()).headers.get("authorization")).toContain("Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  });

  test("a server that refuses connections is a clear error at once", async () => {
    const closed = await freePort();
    const store = new S3Store(s3.storeOptions({ endpoint: `http://127.0.0.1:${closed}`, requestTimeoutMs: 5_000 }));
    const started = Date.now();
    const err = await store.put(KEY, gz("x")).catch((e) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect(err.message).toContain(`S3 HEAD s3://${s3.bucket}/${KEY}`);
    expect(Date.now() - started).toBeLessThan(5_000);
    await expect(store.check()).rejects.toBeInstanceOf(StorageError);
  });

  test("a server that accepts but never answers is a timeout error within the deadline", async () => {
    const hung = await hungServer();
    try {
      const store = new S3Store(s3.storeOptions({ endpoint: hung.endpoint, requestTimeoutMs: 300, checkTimeoutMs: 200 }));
      for (const [run, limit] of [[() => store.put(KEY, gz("x")), 300], [() => store.get(KEY), 300], [() => store.delete(KEY), 300], [() => store.check(), 200]] as const) {
        const started = Date.now();
        const err = await run().catch((e) => e);
        const took = Date.now() - started;
        expect(err).toBeInstanceOf(StorageError);
        expect(err.code).toBe("Timeout");
        expect(err.message).toContain(`no answer in ${limit} ms`);
        expect(took).toBeGreaterThanOrEqual(limit - 20);
        expect(took).toBeLessThan(limit + 2_000);
      }
    } finally {
      await hung.stop();
    }
  });

  test("the caller's abort ends a request at once with the caller's reason", async () => {
    const hung = await hungServer();
    try {
      const store = new S3Store(s3.storeOptions({ endpoint: hung.endpoint }));
      const controller = new AbortController();
      setTimeout(() => controller.abort(new Error("shutting down")), 50);
      await expect(store.get(KEY, controller.signal)).rejects.toThrow("shutting down");
    } finally {
      await hung.stop();
    }
  });
});

describe("createObjectStore", () => {
  test("chooses S3 when S3_BUCKET is set, the directory otherwise", () => {
    const dirStore = createObjectStore({ logArchiveDir: dir });
    expect(dirStore).toBeInstanceOf(DirectoryStore);
    expect(dirStore.location).toBe(`file://${dir}`);
    const s3Store = createObjectStore({ logArchiveDir: dir, s3Bucket: "b", s3Endpoint: "http://127.0.0.1:1", s3AccessKey: "k", s3SecretKey: "s" });
    expect(s3Store).toBeInstanceOf(S3Store);
    expect(s3Store.filePath(KEY)).toBe(`s3://b/${KEY}`);
  });

  test("S3_BUCKET without both keys is refused with what is missing", () => {
    expect(() => createObjectStore({ logArchiveDir: dir, s3Bucket: "b", s3AccessKey: "k" })).toThrow(/S3_ACCESS_KEY or S3_SECRET_KEY/);
  });
});

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/** Accepts connections and reads requests but never answers: a hung S3 endpoint. */
async function hungServer(): Promise<{ endpoint: string; stop(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on("data", () => {});
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
