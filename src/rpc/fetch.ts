/**
 * Connect and gRPC-Web on the Hono app (HEALTH_CHECK_PORT), through the
 * fetch-based universal handlers of @connectrpc/connect: connect-node's
 * HTTP/1.1 adapter has had bugs on Bun (connect-es#877, #1275), these use
 * only web standards. Pages of the same origin (the viewer) need no CORS;
 * pages of the origins in CORS_ORIGINS get Connect's own header lists, plus
 * Authorization for bearer tokens. Handlers learn the client's address from
 * their context (PEER_ADDRESS, for protected mode: access.ts).
 *
 * Limits (request-limits.ts): who may call is decided from the headers
 * before any body is read (the router's requestGate; the fast path admits
 * first too); a body is capped (the router's readMaxBytes, a few KiB, not
 * Connect's 4 GiB default) and must arrive within BODY_DEADLINE_MS; deadline
 * headers are clamped; and Bun's idle timeout is relaxed only for a log
 * stream once it is admitted and open (KEEP_OPEN), never for a request
 * that has not shown who it is.
 */
import { createConnectRouter, createContextValues, cors as connectCors, type ConnectRouter } from "@connectrpc/connect";
import { universalServerResponseToFetch, type UniversalHandler } from "@connectrpc/connect/protocol";
import { cors } from "hono/cors";
import type { App } from "../http/app.ts";
import type { RequestContext } from "../runtime/index.ts";
import { callerOf, PEER_ADDRESS, type AccessCheck } from "./access.ts";
import { connectTimeoutMs, grpcTimeoutMs } from "./framing.ts";
import { boundedBody, clampDeadlineHeaders, closeAfter, RPC_REQUEST_MAX_BYTES } from "./request-limits.ts";
import { rpcShutdownSignal } from "./shutdown.ts";
import { fetchLogStream } from "./fetch-log-stream.ts";
import { STREAM_SESSION_LOGS_PATH } from "./grpc-log-stream.ts";
import { KEEP_OPEN, SERVER_INSTANCE_HEADER, type LogStreams } from "./log-stream-call.ts";

export interface MountRpcOptions {
  /** Services to serve, e.g. `createLogProcessor(...).routes`; one mount per service. */
  routes: (router: ConnectRouter) => void;
  /** Serves StreamSessionLogs without the router when the request allows (see fetch-log-stream.ts). */
  logStreams?: LogStreams;
  /** Aborting ends open streams with UNAVAILABLE so clients reconnect elsewhere. */
  signal: AbortSignal;
  /** CORS_ORIGINS: web origins whose pages may call; none = no CORS headers at all. */
  corsOrigins?: readonly string[];
  /** Who may call: checked from the headers before any request body is read. */
  access: AccessCheck;
  /** Largest request message (the router's readMaxBytes); RPC_REQUEST_MAX_BYTES unless given. */
  readMaxBytes?: number;
}

// 2 hours: the longest preflight cache Chromium honours; the answer never
// changes while the process runs.
const PREFLIGHT_MAX_AGE_S = 7200;

/** Adds one route per RPC (Connect + gRPC-Web) to `app`; returns the paths served. */
export function mountRpc(app: App, options: MountRpcOptions): string[] {
  const shutdown = rpcShutdownSignal(options.signal);
  const readMaxBytes = options.readMaxBytes ?? RPC_REQUEST_MAX_BYTES;
  const router = createConnectRouter({
    shutdownSignal: shutdown,
    readMaxBytes,
    // Before the body is read: a refused caller costs no read, however large its body.
    requestGate: (ctx) => options.access.admit(callerOf(ctx)),
  });
  options.routes(router);
  const origins = options.corsOrigins ?? [];
  const corsHeaders = cors({
    // Only the listed origins: a page elsewhere must not read logs through
    // a browser that can reach this port (protected mode trusts loopback).
    origin: (origin) => (origins.includes(origin) ? origin : null),
    allowMethods: [...connectCors.allowedMethods],
    // The instance header both ways: a page names the numbering it resumes
    // from, and reads whose numbering it gets (logs/server-instance.ts).
    allowHeaders: [...connectCors.allowedHeaders, "Authorization", SERVER_INSTANCE_HEADER],
    exposeHeaders: [...connectCors.exposedHeaders, SERVER_INSTANCE_HEADER],
    maxAge: PREFLIGHT_MAX_AGE_S,
  });
  const paths: string[] = [];
  for (const handler of router.handlers) {
    const fastLogs = handler.requestPath === STREAM_SESSION_LOGS_PATH ? options.logStreams : undefined;
    if (origins.length > 0) app.use(handler.requestPath, corsHeaders);
    app.on(handler.allowedMethods, handler.requestPath, (c) => {
      // A log stream may stay quiet for minutes: it keeps Bun from closing
      // it after its idle timeout (oven-sh/bun#13392) once it is open.
      const fast = fastLogs ? fetchLogStream(fastLogs, shutdown, c.req.raw, c.env?.peer, c.env?.keepOpen) : undefined;
      return fast ?? serveByRouter(handler, c.req.raw, c.env, readMaxBytes);
    });
    paths.push(handler.requestPath);
  }
  return paths;
}

/**
 * One request through Connect's router, as `createFetchHandler` would, but
 * with a capped, timed body (the router reads bodies without a timer), the
 * deadline headers clamped, and the client's address and keepOpen in the
 * call's context. Room for framing and base64 (gRPC-Web text) is allowed on
 * top of `readMaxBytes`, which the router checks per message.
 */
async function serveByRouter(handler: UniversalHandler, req: Request, ctx: RequestContext | undefined, readMaxBytes: number): Promise<Response> {
  const header = new Headers(req.headers);
  clampDeadlineHeaders((n) => header.get(n), (n, v) => header.set(n, v), { grpc: grpcTimeoutMs, connect: connectTimeoutMs });
  // Read to its end, or refused (by the gate, a cap, the deadline) before that?
  let complete = req.body === null;
  const body = (async function* () {
    yield* boundedBody(req.body, 2 * readMaxBytes + 64);
    complete = true;
  })();
  const res = await handler({
    httpVersion: "1.1",
    method: req.method,
    url: req.url,
    header,
    body,
    signal: req.signal,
    contextValues: createContextValues().set(PEER_ADDRESS, ctx?.peer).set(KEEP_OPEN, ctx?.keepOpen),
  });
  const out = universalServerResponseToFetch(res);
  return complete ? out : closeAfter(out);
}
