/**
 * StreamSessionLogs over native gRPC, written straight to the HTTP/2 stream.
 *
 * Why not through connectNodeAdapter like every other call: the router's
 * generic pipeline costs ~25 µs per message per stream on Bun (several async
 * generator stages and a promise with two listeners per write), which with
 * 1,000 streams watching busy sessions is a whole core and seconds of
 * latency. Here each line is encoded once for all streams (LogStreamCore.
 * envelope), and a stream writes whatever has queued up since its last write
 * in one go, waiting for 'drain' when HTTP/2 flow control says so — which is
 * exactly when its bounded queue fills and RESOURCE_EXHAUSTED applies.
 *
 * Only the plain case is taken: POST of `application/grpc` or
 * `application/grpc+proto` without request compression. Everything else
 * (gRPC+JSON, Connect and gRPC-Web over h2c, compressed requests, other
 * services) falls through to the Connect router.
 */
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { fromBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { StreamSessionLogsRequestSchema } from "../gen/manman/v1/log_processor_pb.ts";
import type { LogStreamCore } from "./log-processor.ts";

export const STREAM_SESSION_LOGS_PATH = "/manman.v1.LogProcessor/StreamSessionLogs";

// Lines per write: a burst goes out in a few writes of at most this many,
// so one stream's catch-up cannot hold the event loop for long.
const MAX_LINES_PER_WRITE = 256;
// 1 KiB: a StreamSessionLogsRequest is two varints; anything bigger is not one.
const MAX_REQUEST_BYTES = 1024;

export type Http2Handler = (req: Http2ServerRequest, res: Http2ServerResponse) => boolean;

/** Returns a handler that serves the request and returns true, or returns false to let the router have it. */
export function grpcLogStreamHandler(core: LogStreamCore, shutdown: AbortSignal): Http2Handler {
  return (req, res) => {
    if (req.url !== STREAM_SESSION_LOGS_PATH || req.method !== "POST") return false;
    const type = req.headers["content-type"];
    if (type !== "application/grpc" && type !== "application/grpc+proto") return false;
    const encoding = req.headers["grpc-encoding"];
    if (encoding !== undefined && encoding !== "identity") return false;
    void serve(core, shutdown, req, res);
    return true;
  };
}

async function serve(core: LogStreamCore, shutdown: AbortSignal, req: Http2ServerRequest, res: Http2ServerResponse): Promise<void> {
  const call = new AbortController();
  const abort = (reason: unknown) => call.abort(reason);
  const onShutdown = () => abort(shutdown.reason);
  if (shutdown.aborted) onShutdown();
  else shutdown.addEventListener("abort", onShutdown, { once: true });
  res.once("close", () => abort(new ConnectError("client went away", Code.Canceled)));
  const deadline = grpcTimeoutMs(req.headers["grpc-timeout"]);
  const timer = deadline === undefined ? undefined : setTimeout(() => abort(new ConnectError("deadline exceeded", Code.DeadlineExceeded)), deadline);
  let opened: ReturnType<LogStreamCore["open"]> | undefined;
  let reason = "client_left";
  try {
    const body = await readBody(req);
    if (body.length < 5 || body[0] !== 0 || new DataView(body.buffer, body.byteOffset).getUint32(1) !== body.length - 5) {
      throw new ConnectError("request is not one uncompressed gRPC message", Code.InvalidArgument);
    }
    const request = fromBinary(StreamSessionLogsRequestSchema, body.subarray(5));
    opened = core.open(request, header(req.headers.authorization), call.signal);
    res.writeHead(200, { "content-type": "application/grpc+proto", "grpc-accept-encoding": "identity" });
    for (;;) {
      const batch = await opened.sub.nextBatch(MAX_LINES_PER_WRITE);
      if (batch.length === 0) break;
      if (!res.write(joinChunks(batch.map((l) => core.envelope(l))))) await drained(res, call.signal);
    }
    // The subscription ended because the call was aborted: shutdown
    // (UNAVAILABLE), deadline, or the client left (nobody to tell).
    const why = call.signal.reason;
    if (why instanceof ConnectError && why.code !== Code.Canceled) throw why;
  } catch (err) {
    const e = opened ? core.failure(err, opened.sessionId, call.signal) : ConnectError.from(err);
    reason = e.code === Code.ResourceExhausted ? "fell_behind" : e.code === Code.Unavailable ? "shutdown" : e.code === Code.Unauthenticated ? "unauthenticated" : "error";
    if (!res.closed) finish(res, e.code, e.rawMessage);
  } finally {
    clearTimeout(timer);
    shutdown.removeEventListener("abort", onShutdown);
    if (opened) {
      opened.sub.close();
      core.ended(reason);
    }
  }
}

/**
 * Ends the call with a status in trailers, after headers if none went out
 * yet. Not as a "trailers-only" response: through the compat API that would
 * be headers then an empty DATA frame with END_STREAM, which gRPC C-core
 * (grpcio, and so grpcurl's peers) rejects as "Stream removed".
 */
function finish(res: Http2ServerResponse, code: Code, message: string): void {
  const status = { "grpc-status": String(code), ...(message ? { "grpc-message": encodeURIComponent(message) } : {}) };
  try {
    if (!res.headersSent) res.writeHead(200, { "content-type": "application/grpc+proto" });
    res.addTrailers(status);
    res.end();
  } catch {
    // The stream closed under us (the client left at this very moment): nobody to tell.
  }
}

function readBody(req: Http2ServerRequest): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > MAX_REQUEST_BYTES) reject(new ConnectError("request too large", Code.ResourceExhausted));
      else chunks.push(c);
    });
    req.once("end", () => resolve(new Uint8Array(Buffer.concat(chunks))));
    req.once("error", reject);
  });
}

function drained(res: Http2ServerResponse, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off("drain", done);
      signal.removeEventListener("abort", done);
      resolve();
    };
    res.on("drain", done);
    signal.addEventListener("abort", done, { once: true });
  });
}

/** Concatenates encoded messages into one write. */
export function joinChunks(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  let size = 0;
  for (const p of parts) size += p.length;
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const header = (v: string | string[] | undefined): string | null => (Array.isArray(v) ? v[0] : v) ?? null;

/** gRPC's `grpc-timeout`: up to 8 digits and a unit (H M S m u n). */
export function grpcTimeoutMs(value: string | string[] | undefined): number | undefined {
  const m = /^(\d{1,8})([HMSmun])$/.exec(header(value) ?? "");
  if (!m) return undefined;
  const unit = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 }[m[2] as "H"];
  return Number(m[1]) * unit;
}
