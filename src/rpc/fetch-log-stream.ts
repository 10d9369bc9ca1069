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
 * Taken: POST of `application/connect+proto|json` or
 * `application/grpc-web(+proto)` without request compression. Anything else
 * (grpc-web-text, compressed requests, GET) goes to the Connect router.
 */
import { fromBinary, fromJsonString } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { StreamSessionLogsRequestSchema } from "../gen/manman/v1/log_processor_pb.ts";
import type { LogLine } from "../logs/line.ts";
import type { LogStreamCore } from "./log-processor.ts";
import { grpcTimeoutMs, joinChunks } from "./grpc-log-stream.ts";

type Wire = "connect+proto" | "connect+json" | "grpc-web";

// See grpc-log-stream.ts: bounds one read so a catch-up cannot hold the loop.
const MAX_LINES_PER_CHUNK = 256;
// 1 KiB: a StreamSessionLogsRequest is two numbers, even as JSON.
const MAX_REQUEST_BYTES = 1024;
const encoder = new TextEncoder();

/** A Response for the request, or undefined to let the router have it. */
export function fetchLogStream(core: LogStreamCore, shutdown: AbortSignal, req: Request): Promise<Response> | undefined {
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
  return serve(core, shutdown, req, wire);
}

async function serve(core: LogStreamCore, shutdown: AbortSignal, req: Request, wire: Wire): Promise<Response> {
  const headers = {
    "content-type": wire === "grpc-web" ? "application/grpc-web+proto" : `application/${wire}`,
    ...(wire === "grpc-web" ? { "grpc-accept-encoding": "identity" } : { "connect-accept-encoding": "identity" }),
  };
  const call = new AbortController();
  const abort = (reason: unknown) => call.abort(reason);
  const onShutdown = () => abort(shutdown.reason);
  const timeoutMs = wire === "grpc-web" ? grpcTimeoutMs(req.headers.get("grpc-timeout") ?? undefined) : connectTimeoutMs(req.headers.get("connect-timeout-ms"));
  let timer: ReturnType<typeof setTimeout> | undefined;
  let opened: ReturnType<LogStreamCore["open"]> | undefined;
  let reason = "client_left";
  const cleanup = () => {
    clearTimeout(timer);
    shutdown.removeEventListener("abort", onShutdown);
    req.signal.removeEventListener("abort", onClientGone);
    if (opened) {
      opened.sub.close();
      opened = undefined;
      core.ended(reason);
    }
  };
  const onClientGone = () => abort(new ConnectError("client went away", Code.Canceled));
  try {
    const body = new Uint8Array(await req.arrayBuffer());
    if (body.length > MAX_REQUEST_BYTES + 5 || body.length < 5 || body[0] !== 0 || new DataView(body.buffer).getUint32(1) !== body.length - 5) {
      throw new ConnectError("request is not one uncompressed message", Code.InvalidArgument);
    }
    const payload = body.subarray(5);
    const request = wire === "connect+json"
      ? fromJsonString(StreamSessionLogsRequestSchema, new TextDecoder().decode(payload), { ignoreUnknownFields: true })
      : fromBinary(StreamSessionLogsRequestSchema, payload);
    if (shutdown.aborted) onShutdown();
    else shutdown.addEventListener("abort", onShutdown, { once: true });
    req.signal.addEventListener("abort", onClientGone, { once: true });
    if (timeoutMs !== undefined) timer = setTimeout(() => abort(new ConnectError("deadline exceeded", Code.DeadlineExceeded)), timeoutMs);
    opened = core.open(request, req.headers.get("authorization"), call.signal);
  } catch (err) {
    reason = ConnectError.from(err).code === Code.Unauthenticated ? "unauthenticated" : "error";
    cleanup();
    return new Response(ending(wire, ConnectError.from(err)), { status: 200, headers });
  }
  const { sub, sessionId } = opened;
  const encode = (l: LogLine) => (wire === "connect+json" ? core.jsonEnvelope(l) : core.envelope(l));
  const stream = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          const batch = await sub.nextBatch(MAX_LINES_PER_CHUNK);
          if (batch.length > 0) return controller.enqueue(joinChunks(batch.map(encode)));
          // Ended by an abort: shutdown (UNAVAILABLE), deadline, or the client left.
          const why = call.signal.reason;
          if (why instanceof ConnectError && why.code !== Code.Canceled) throw why;
          if (!(why instanceof ConnectError)) controller.enqueue(ending(wire, undefined));
          cleanup();
          controller.close();
        } catch (err) {
          const e = core.failure(err, sessionId, call.signal);
          reason = e.code === Code.ResourceExhausted ? "fell_behind" : e.code === Code.Unavailable ? "shutdown" : "error";
          cleanup();
          controller.enqueue(ending(wire, e));
          controller.close();
        }
      },
      cancel() {
        cleanup();
      },
    },
    // Pull one chunk ahead at most: anything more would sit in the stream
    // instead of in the bounded queue.
    { highWaterMark: 1 },
  );
  return new Response(stream, { status: 200, headers });
}

/** The last frame: Connect's end-of-stream message, or gRPC-Web's trailers. */
function ending(wire: Wire, error: ConnectError | undefined): Uint8Array<ArrayBuffer> {
  let flags: number;
  let text: string;
  if (wire === "grpc-web") {
    flags = 0x80;
    text = `grpc-status: ${error ? error.code : 0}\r\n` + (error?.rawMessage ? `grpc-message: ${encodeURIComponent(error.rawMessage)}\r\n` : "");
  } else {
    flags = 0x02;
    text = JSON.stringify(error ? { error: { code: Code[error.code].replace(/[A-Z]/g, (c, i) => (i ? "_" : "") + c.toLowerCase()), message: error.rawMessage } } : {});
  }
  const payload = encoder.encode(text);
  const frame = new Uint8Array(5 + payload.length);
  frame[0] = flags;
  new DataView(frame.buffer).setUint32(1, payload.length);
  frame.set(payload, 5);
  return frame;
}

function connectTimeoutMs(value: string | null): number | undefined {
  return value !== null && /^\d{1,10}$/.test(value) ? Number(value) : undefined;
}
