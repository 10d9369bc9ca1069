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
 * The request is read only after the caller was admitted (token or
 * address, and a stream slot), at most STREAM_REQUEST_MAX_BYTES within
 * BODY_DEADLINE_MS. Only the plain case is taken: POST of `application/grpc` or
 * `application/grpc+proto` without request compression. Everything else
 * (gRPC+JSON, Connect and gRPC-Web over h2c, compressed requests, other
 * services) falls through to the Connect router.
 */
import { constants, type Http2ServerRequest, type Http2ServerResponse } from "node:http2";
import { fromBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { StreamSessionLogsRequestSchema } from "../gen/manman/v1/log_processor_pb.ts";
import { onAbort } from "../util/abort.ts";
import { grpcTimeoutMs, joinChunks, oneMessage } from "./framing.ts";
import { SERVER_INSTANCE_HEADER, type LogStreams } from "./log-stream-call.ts";
import { assertLength, BODY_DEADLINE_MS, bodyTooLarge, bodyTooSlow, STREAM_REQUEST_MAX_BYTES } from "./request-limits.ts";

export const STREAM_SESSION_LOGS_PATH = "/manman.v1.LogProcessor/StreamSessionLogs";

// Lines per write: a burst goes out in a few writes of at most this many,
// so one stream's catch-up cannot hold the event loop for long.
const MAX_LINES_PER_WRITE = 256;

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
    // Who may call, and a stream slot, are settled before the body is read.
    await call.admit({ authorization: header(req.headers.authorization), peer: req.socket?.remoteAddress });
    const payload = oneMessage(await readBody(req, STREAM_REQUEST_MAX_BYTES + 5));
    if (!payload) throw new ConnectError("request is not one uncompressed gRPC message", Code.InvalidArgument);
    call.open(decode(payload), header(req.headers[SERVER_INSTANCE_HEADER]));
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
    // A client still sending (a refused 100 MB body) would keep the stream
    // open, and count against maxConcurrentStreams, until it gave up:
    // RST_STREAM(NO_ERROR) after the trailers, as gRPC servers do.
    res.end(() => res.stream.closed || res.stream.close(constants.NGHTTP2_NO_ERROR));
  } catch {
    // The stream closed under us (the client left at this very moment): nobody to tell.
  }
}

function decode(payload: Uint8Array) {
  try {
    return fromBinary(StreamSessionLogsRequestSchema, payload);
  } catch (err) {
    throw new ConnectError(`request is not a StreamSessionLogsRequest: ${(err as Error).message}`, Code.InvalidArgument);
  }
}

/**
 * The whole request body, if it has at most `maxBytes` and ends within
 * BODY_DEADLINE_MS; otherwise RESOURCE_EXHAUSTED or DEADLINE_EXCEEDED, and
 * the rest is not read (the stream is reset once the status is sent).
 */
function readBody(req: Http2ServerRequest, maxBytes: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (err?: ConnectError) => {
      clearTimeout(timer);
      req.off("data", onData);
      if (err) {
        req.pause();
        reject(err);
      } else resolve(new Uint8Array(Buffer.concat(chunks)));
    };
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > maxBytes) done(bodyTooLarge(maxBytes));
      else chunks.push(c);
    };
    const timer = setTimeout(() => done(bodyTooSlow(BODY_DEADLINE_MS)), BODY_DEADLINE_MS);
    try {
      assertLength(header(req.headers["content-length"]), maxBytes);
    } catch (err) {
      return done(err as ConnectError);
    }
    req.on("data", onData);
    req.once("end", () => done());
    req.once("error", (err) => done(ConnectError.from(err)));
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
