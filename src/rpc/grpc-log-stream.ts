/**
 * StreamSessionLogs over native gRPC, written straight to the HTTP/2 stream.
 *
 * Why not through connectNodeAdapter like every other call: the router's
 * generic pipeline costs ~25 µs per message per stream on Bun (several async
 * generator stages and a promise with two listeners per write), which with
 * 1,000 streams watching busy sessions is a whole core and seconds of
 * latency. Here each line is encoded once for all streams (LogEncodings.
 * envelope), and a stream writes whatever has queued up since its last write
 * in one go, waiting for 'drain' when HTTP/2 flow control says so — which is
 * exactly when its bounded queue fills and RESOURCE_EXHAUSTED applies.
 *
 * What ends the call and with which status is the call's business
 * (log-stream-call.ts); this file reads the request and frames bytes.
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
import { onAbort } from "../util/abort.ts";
import { grpcTimeoutMs, joinChunks, oneMessage } from "./framing.ts";
import { SERVER_INSTANCE_HEADER, type LogStreams } from "./log-stream-call.ts";

export const STREAM_SESSION_LOGS_PATH = "/manman.v1.LogProcessor/StreamSessionLogs";

// Lines per write: a burst goes out in a few writes of at most this many,
// so one stream's catch-up cannot hold the event loop for long.
const MAX_LINES_PER_WRITE = 256;
// 1 KiB: a StreamSessionLogsRequest is two varints; anything bigger is not one.
const MAX_REQUEST_BYTES = 1024;

export type Http2Handler = (req: Http2ServerRequest, res: Http2ServerResponse) => boolean;

/** Returns a handler that serves the request and returns true, or returns false to let the router have it. */
export function grpcLogStreamHandler(streams: LogStreams, shutdown: AbortSignal): Http2Handler {
  return (req, res) => {
    if (req.url !== STREAM_SESSION_LOGS_PATH || req.method !== "POST") return false;
    const type = req.headers["content-type"];
    if (type !== "application/grpc" && type !== "application/grpc+proto") return false;
    const encoding = req.headers["grpc-encoding"];
    if (encoding !== undefined && encoding !== "identity") return false;
    void serve(streams, shutdown, req, res);
    return true;
  };
}

async function serve(streams: LogStreams, shutdown: AbortSignal, req: Http2ServerRequest, res: Http2ServerResponse): Promise<void> {
  const call = streams.call({ shutdown, timeoutMs: grpcTimeoutMs(header(req.headers["grpc-timeout"])) });
  res.once("close", () => call.clientGone());
  try {
    // Who may call is settled before the body is read (access.ts).
    await call.admit({ authorization: header(req.headers.authorization), peer: req.socket?.remoteAddress });
    const payload = oneMessage(await readBody(req));
    if (!payload) throw new ConnectError("request is not one uncompressed gRPC message", Code.InvalidArgument);
    call.open(fromBinary(StreamSessionLogsRequestSchema, payload), header(req.headers[SERVER_INSTANCE_HEADER]));
    res.writeHead(200, { "content-type": "application/grpc+proto", "grpc-accept-encoding": "identity", [SERVER_INSTANCE_HEADER]: streams.instance });
    for (;;) {
      const batch = await call.nextBatch(MAX_LINES_PER_WRITE);
      if (batch.length === 0) break;
      if (!res.write(joinChunks(batch.map((l) => streams.encodings.envelope(l))))) await drained(res, call.signal);
    }
    const status = call.ended();
    if (status && !res.closed) finish(res, status, streams.instance);
  } catch (err) {
    const status = call.failed(err);
    if (!res.closed) finish(res, status, streams.instance);
  } finally {
    call.close();
  }
}

/**
 * Ends the call with a status in trailers, after headers if none went out
 * yet. Not as a "trailers-only" response: through the compat API that would
 * be headers then an empty DATA frame with END_STREAM, which gRPC C-core
 * (grpcio, and so grpcurl's peers) rejects as "Stream removed".
 */
function finish(res: Http2ServerResponse, status: ConnectError, instance: string): void {
  const trailers = { "grpc-status": String(status.code), ...(status.rawMessage ? { "grpc-message": encodeURIComponent(status.rawMessage) } : {}) };
  try {
    if (!res.headersSent) res.writeHead(200, { "content-type": "application/grpc+proto", [SERVER_INSTANCE_HEADER]: instance });
    res.addTrailers(trailers);
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

/** Resolves on 'drain', or at once when the call ends. */
function drained(res: Http2ServerResponse, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    let off: (() => void) | undefined;
    const done = () => {
      res.off("drain", done);
      off?.();
      resolve();
    };
    res.on("drain", done);
    off = onAbort(signal, done);
  });
}

const header = (v: string | string[] | undefined): string | null => (Array.isArray(v) ? v[0] : v) ?? null;
