/**
 * StreamSessionLogs over Connect and gRPC-Web on the fetch side (the Hono
 * app), written straight into the response stream — the browser twin of
 * grpc-log-stream.ts, for the same reason: Connect's generic pipeline costs
 * ~100 µs per message per stream on Bun's fetch path, the server's whole
 * budget at a thousand viewers. Each line is encoded once (binary or JSON)
 * for every stream, and a stream sends whatever queued up since its last
 * read in one chunk. The response body is pull-based: while a slow client's
 * socket is full nothing is pulled, its bounded queue fills, and it gets
 * RESOURCE_EXHAUSTED when it reads again.
 *
 * What ends the call and with which status is the call's business
 * (log-stream-call.ts); this file reads the request and frames bytes.
 *
 * The request is read only after the caller was admitted (token or
 * address, and a stream slot), at most STREAM_REQUEST_MAX_BYTES within
 * BODY_DEADLINE_MS; the idle timeout is relaxed only once the stream is open.
 *
 * Taken: POST of `application/connect+proto|json` or
 * `application/grpc-web(+proto)` without request compression. Anything else
 * (grpc-web-text, compressed requests, GET) goes to the Connect router.
 */
import { fromBinary, fromJsonString } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { StreamSessionLogsRequestSchema } from "../gen/manman/v1/log_processor_pb.ts";
import type { LogLine } from "../logs/line.ts";
import { connectTimeoutMs, envelop, grpcTimeoutMs, joinChunks, oneMessage } from "./framing.ts";
import { SERVER_INSTANCE_HEADER, type LogStreams } from "./log-stream-call.ts";
import { closeAfter, readBodyWithin, STREAM_REQUEST_MAX_BYTES } from "./request-limits.ts";

type Wire = "connect+proto" | "connect+json" | "grpc-web";

// See grpc-log-stream.ts: bounds one read so a catch-up cannot hold the loop.
const MAX_LINES_PER_CHUNK = 256;
const encoder = new TextEncoder();

/** A Response for the request, or undefined to let the router have it. */
export function fetchLogStream(streams: LogStreams, shutdown: AbortSignal, req: Request, peer?: string, keepOpen?: () => void): Promise<Response> | undefined {
  if (req.method !== "POST") return undefined;
  const type = (req.headers.get("content-type") ?? "").split(";")[0].trim();
  const wire: Wire | undefined =
    type === "application/connect+proto" ? "connect+proto"
    : type === "application/connect+json" ? "connect+json"
    : type === "application/grpc-web" || type === "application/grpc-web+proto" ? "grpc-web"
    : undefined;
  if (!wire) return undefined;
  const encoding = req.headers.get(wire === "grpc-web" ? "grpc-encoding" : "connect-content-encoding");
  if (encoding !== null && encoding !== "identity") return undefined;
  return serve(streams, shutdown, req, wire, peer, keepOpen);
}

async function serve(streams: LogStreams, shutdown: AbortSignal, req: Request, wire: Wire, peer: string | undefined, keepOpen: (() => void) | undefined): Promise<Response> {
  const headers = {
    "content-type": wire === "grpc-web" ? "application/grpc-web+proto" : `application/${wire}`,
    ...(wire === "grpc-web" ? { "grpc-accept-encoding": "identity" } : { "connect-accept-encoding": "identity" }),
    [SERVER_INSTANCE_HEADER]: streams.instance,
  };
  const timeoutMs = wire === "grpc-web" ? grpcTimeoutMs(req.headers.get("grpc-timeout")) : connectTimeoutMs(req.headers.get("connect-timeout-ms"));
  // The request's signal aborts when the client goes away.
  const call = streams.call({ shutdown, timeoutMs, signal: req.signal, keepOpen });
  let bodyRead = false;
  try {
    // Who may call, and a stream slot, are settled before the body is read.
    await call.admit({ authorization: req.headers.get("authorization"), peer });
    const body = await readBodyWithin(req, STREAM_REQUEST_MAX_BYTES + 5);
    bodyRead = true;
    const payload = oneMessage(body);
    if (!payload) throw new ConnectError("request is not one uncompressed message", Code.InvalidArgument);
    call.open(decode(wire, payload), req.headers.get(SERVER_INSTANCE_HEADER));
  } catch (err) {
    const status = call.failed(err);
    call.close();
    const res = new Response(ending(wire, status), { status: 200, headers });
    return bodyRead ? res : closeAfter(res);
  }
  const { encodings } = streams;
  const encode = wire === "connect+json" ? (l: LogLine) => encodings.jsonEnvelope(l) : (l: LogLine) => encodings.envelope(l);
  const finish = (controller: ReadableStreamDefaultController<Uint8Array>, status: ConnectError | undefined) => {
    if (status) controller.enqueue(ending(wire, status));
    call.close();
    controller.close();
  };
  const stream = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          const batch = await call.nextBatch(MAX_LINES_PER_CHUNK);
          if (batch.length > 0) return controller.enqueue(joinChunks(batch.map(encode)));
          finish(controller, call.ended());
        } catch (err) {
          finish(controller, call.failed(err));
        }
      },
      cancel() {
        call.close();
      },
    },
    // Pull one chunk ahead at most: anything more would sit in the stream
    // instead of in the bounded queue.
    { highWaterMark: 1 },
  );
  return new Response(stream, { status: 200, headers });
}

function decode(wire: Wire, payload: Uint8Array) {
  try {
    return wire === "connect+json"
      ? fromJsonString(StreamSessionLogsRequestSchema, new TextDecoder().decode(payload), { ignoreUnknownFields: true })
      : fromBinary(StreamSessionLogsRequestSchema, payload);
  } catch (err) {
    throw new ConnectError(`request is not a StreamSessionLogsRequest: ${(err as Error).message}`, Code.InvalidArgument);
  }
}

/** The last frame: Connect's end-of-stream message, or gRPC-Web's trailers. */
function ending(wire: Wire, error: ConnectError): Uint8Array<ArrayBuffer> {
  if (wire === "grpc-web") {
    const text = `grpc-status: ${error.code}\r\n` + (error.rawMessage ? `grpc-message: ${encodeURIComponent(error.rawMessage)}\r\n` : "");
    return envelop(encoder.encode(text), 0x80);
  }
  const code = Code[error.code].replace(/[A-Z]/g, (c, i) => (i ? "_" : "") + c.toLowerCase());
  return envelop(encoder.encode(JSON.stringify({ error: { code, message: error.rawMessage } })), 0x02);
}
