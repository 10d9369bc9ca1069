/**
 * The archive in an S3-compatible bucket (S3_BUCKET set). Requests are
 * signed with SigV4 by aws4fetch over fetch and Web Crypto, not the AWS SDK,
 * so the compiled binary stays small and the Deno bundle runs the same code
 * (PITFALLS "S3 from Bun and Deno").
 *
 * Addressing as upstream: path-style `<S3_ENDPOINT>/<bucket>/<key>` when
 * S3_ENDPOINT is set (MinIO, s3rver, …), else AWS's virtual-hosted
 * `https://<bucket>.s3.<region>.amazonaws.com/<key>`. file_path is
 * `s3://<bucket>/<key>`, which the ManManV2 API turns back into the key.
 *
 * Objects are written as upstream writes them (`Content-Type:
 * application/gzip`, `Content-Encoding: gzip`) and never overwritten: a HEAD
 * first (some S3-compatible servers, s3rver among them, ignore conditional
 * writes), then a PUT with `If-None-Match: *`, which S3 itself makes atomic
 * (412 when the key exists). The payload's SHA-256 is signed, so S3 refuses
 * a body changed on the way (XAmzContentSHA256Mismatch).
 *
 * No retries here (aws4fetch's own 10 are off): the archive writer retries
 * with backoff and holds the lines meanwhile, and every request has a
 * deadline so a hung endpoint is an error, not a stall.
 */
import { AwsClient } from "aws4fetch";
import { ObjectExistsError, StorageError, checkKey, isValidKey, sameBytes, type ObjectStore } from "./store.ts";

export interface S3StoreOptions {
  bucket: string;
  /** Signing region; us-east-1 when unset, as upstream. */
  region?: string;
  /** S3-compatible endpoint URL, addressed path-style; unset = AWS. */
  endpoint?: string;
  accessKeyId: string;
  secretAccessKey: string;
  /**
   * Deadline of one request, body included. 30 s: an object is one session
   * minute or an early cut of at most LOG_ARCHIVE_MAX_PENDING_LINES lines,
   * typically a few hundred KB of gzip; S3 answers such a PUT in well under
   * a second, and 30 s still carries ~30 MB over a slow 1 MB/s link. Past it
   * the endpoint is as good as down and the writer's retry takes over.
   */
  requestTimeoutMs?: number;
  /**
   * Deadline of the readiness probe. 2 s, the readiness endpoint's own
   * budget for each check (src/http/app.ts): a probe must answer before the
   * kubelet's probe timeout.
   */
  checkTimeoutMs?: number;
}

const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
const DEFAULT_CHECK_TIMEOUT_MS = 2_000;
// Enough of an S3 error body for its Code and Message; more is never useful in a log line.
const ERROR_BODY_LIMIT = 4096;

export class S3Store implements ObjectStore {
  readonly kind = "s3";
  readonly bucket: string;
  readonly #client: AwsClient;
  readonly #base: string;
  readonly #requestTimeoutMs: number;
  readonly #checkTimeoutMs: number;

  constructor(options: S3StoreOptions) {
    if (!options.bucket) throw new StorageError("S3 bucket name is empty");
    this.bucket = options.bucket;
    const region = options.region || "us-east-1";
    this.#base = options.endpoint
      ? `${options.endpoint.replace(/\/+$/, "")}/${encodeURIComponent(options.bucket)}`
      : `https://${options.bucket}.s3.${region}.amazonaws.com`;
    // service and region explicit: aws4fetch guesses them from AWS host
    // names only, and an S3_ENDPOINT is anything.
    this.#client = new AwsClient({ accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey, service: "s3", region, retries: 0 });
    this.#requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.#checkTimeoutMs = options.checkTimeoutMs ?? DEFAULT_CHECK_TIMEOUT_MS;
  }

  get location(): string {
    return `s3://${this.bucket}`;
  }

  async put(key: string, gzipBytes: Uint8Array, signal?: AbortSignal): Promise<void> {
    checkKey(key);
    const head = await this.#request("HEAD", key, {}, signal);
    if (head.status === 200) return this.#sameAsStored(key, gzipBytes, signal);
    if (head.status !== 404) throw await failure("HEAD", this.filePath(key), head);
    const res = await this.#request(
      "PUT",
      key,
      { body: gzipBytes, headers: { "Content-Type": "application/gzip", "Content-Encoding": "gzip", "If-None-Match": "*" } },
      signal,
    );
    if (res.ok) return;
    // 412: the key was written since our HEAD; 409: a concurrent conditional write of it is in progress.
    if (res.status === 412 || res.status === 409) return this.#sameAsStored(key, gzipBytes, signal);
    throw await failure("PUT", this.filePath(key), res);
  }

  async get(key: string, signal?: AbortSignal): Promise<Uint8Array | null> {
    checkKey(key);
    const got = await this.#getStored(key, signal);
    if (!got) return null;
    return got.decoded ? gzip(got.bytes) : got.bytes;
  }

  async delete(key: string, signal?: AbortSignal): Promise<void> {
    checkKey(key);
    const res = await this.#request("DELETE", key, {}, signal);
    // S3 answers 204 for a missing key too; some compatible servers say 404 NoSuchKey.
    if (res.ok) return;
    const err = await failure("DELETE", this.filePath(key), res);
    if (res.status === 404 && err.code === "NoSuchKey") return;
    throw err;
  }

  filePath(key: string): string {
    checkKey(key);
    return `s3://${this.bucket}/${key}`;
  }

  keyOf(filePath: string): string | null {
    const prefix = `s3://${this.bucket}/`;
    if (!filePath.startsWith(prefix)) return null;
    const key = filePath.slice(prefix.length);
    return isValidKey(key) ? key : null;
  }

  /** HEAD of the bucket: reachable, credentials accepted, bucket there. */
  async check(signal?: AbortSignal): Promise<void> {
    const res = await this.#request("HEAD", undefined, {}, signal, this.#checkTimeoutMs);
    if (!res.ok) throw await failure("HEAD", this.location, res);
  }

  /**
   * The stored object's bytes. Runtimes decode a `Content-Encoding: gzip`
   * response unless told not to: Bun is (`decompress: false`), others may
   * not be, so `decoded` says whether the bytes are still the stored gzip
   * (they start with gzip's magic number) or its content.
   */
  async #getStored(key: string, signal?: AbortSignal): Promise<{ bytes: Uint8Array; decoded: boolean } | null> {
    const target = this.filePath(key);
    const res = await this.#request("GET", key, {}, signal, this.#requestTimeoutMs, true);
    if (res.status === 404) {
      const err = await failure("GET", target, res);
      if (err.code === "NoSuchKey" || err.code === "NotFound") return null;
      throw err;
    }
    if (!res.ok) throw await failure("GET", target, res);
    const bytes = new Uint8Array(await res.arrayBuffer());
    return { bytes, decoded: !(bytes[0] === 0x1f && bytes[1] === 0x8b) };
  }

  /** put found the key taken: fine if it holds our content (an earlier attempt that landed), else refuse. */
  async #sameAsStored(key: string, gzipBytes: Uint8Array, signal?: AbortSignal): Promise<void> {
    const stored = await this.#getStored(key, signal);
    if (!stored) throw new StorageError(`S3 PUT ${this.filePath(key)}: the object was there, then gone; retry`);
    // Bytes that do not gunzip cannot be what a runtime decoded from the store.
    const ours = stored.decoded ? await gunzip(gzipBytes).catch(() => null) : gzipBytes;
    if (!ours || !sameBytes(stored.bytes, ours)) throw new ObjectExistsError(key);
  }

  async #request(
    method: string,
    key: string | undefined,
    init: { body?: Uint8Array; headers?: Record<string, string> },
    signal?: AbortSignal,
    timeoutMs = this.#requestTimeoutMs,
    readBody = false,
  ): Promise<Response> {
    const url = key === undefined ? `${this.#base}/` : `${this.#base}/${key.split("/").map(encodeURIComponent).join("/")}`;
    const target = key === undefined ? this.location : this.filePath(key);
    const deadline = AbortSignal.timeout(timeoutMs);
    const combined = signal ? AbortSignal.any([deadline, signal]) : deadline;
    try {
      const headers: Record<string, string> = { ...init.headers };
      if (init.body) headers["X-Amz-Content-Sha256"] = await sha256Hex(init.body);
      const signed = await this.#client.sign(url, { method, headers, body: init.body as Uint8Array<ArrayBuffer> | undefined });
      // decompress is Bun's (BunFetchRequestInit): keep the stored gzip bytes as they are.
      const res = await fetch(signed, { signal: combined, decompress: false } as RequestInit);
      if (readBody && res.ok) {
        // Read the body inside the deadline too: a stalled download is a timeout.
        const body = await res.arrayBuffer();
        return new Response(body, { status: res.status, headers: res.headers });
      }
      return res;
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      if (deadline.aborted) throw new StorageError(`S3 ${method} ${target}: no answer in ${timeoutMs} ms`, { code: "Timeout", cause: err });
      throw new StorageError(`S3 ${method} ${target}: ${(err as Error)?.message ?? String(err)}`, { code: (err as { code?: string })?.code, cause: err });
    }
  }
}

/** The S3 error of a non-2xx answer: status, S3's Code and Message from the XML body (HEAD has none). */
async function failure(method: string, target: string, res: Response): Promise<StorageError> {
  let text = "";
  try {
    text = method === "HEAD" ? "" : (await res.text()).slice(0, ERROR_BODY_LIMIT);
  } catch {
    // The body is only for the message.
  }
  const code = /<Code>([^<]*)<\/Code>/.exec(text)?.[1] ?? (res.status === 404 ? "NotFound" : res.status === 403 ? "Forbidden" : undefined);
  const message = /<Message>([^<]*)<\/Message>/.exec(text)?.[1];
  const detail = [code, message].filter(Boolean).join(": ");
  return new StorageError(`S3 ${method} ${target}: HTTP ${res.status}${detail ? ` ${detail}` : ""}`, { status: res.status, code });
}

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  let hex = "";
  for (const b of digest) hex += b.toString(16).padStart(2, "0");
  return hex;
}

async function pipe(bytes: Uint8Array, transform: CompressionStream | DecompressionStream): Promise<Uint8Array> {
  return new Uint8Array(await new Response(new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(transform)).arrayBuffer());
}
const gzip = (bytes: Uint8Array) => pipe(bytes, new CompressionStream("gzip"));
const gunzip = (bytes: Uint8Array) => pipe(bytes, new DecompressionStream("gzip"));
