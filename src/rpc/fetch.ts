/**
 * Connect and gRPC-Web on the Hono app (HEALTH_CHECK_PORT), through the
 * fetch-based universal handlers of @connectrpc/connect: connect-node's
 * HTTP/1.1 adapter has had bugs on Bun (connect-es#877, #1275), these use
 * only web standards. Pages of the same origin (the viewer) need no CORS;
 * pages of the origins in CORS_ORIGINS get Connect's own header lists, plus
 * Authorization for bearer tokens. Handlers learn the client's address from
 * their context (PEER_ADDRESS, for protected mode: access.ts).
 */
import { createConnectRouter, createContextValues, cors as connectCors, type ConnectRouter } from "@connectrpc/connect";
import { universalServerRequestFromFetch, universalServerResponseToFetch } from "@connectrpc/connect/protocol";
import { cors } from "hono/cors";
import type { App } from "../http/app.ts";
import { PEER_ADDRESS } from "./access.ts";
import { rpcShutdownSignal } from "./shutdown.ts";
import { fetchLogStream } from "./fetch-log-stream.ts";
import { STREAM_SESSION_LOGS_PATH } from "./grpc-log-stream.ts";
import { SERVER_INSTANCE_HEADER, type LogStreams } from "./log-stream-call.ts";

export interface MountRpcOptions {
  /** Services to serve, e.g. `createLogProcessor(...).routes`; one mount per service. */
  routes: (router: ConnectRouter) => void;
  /** Serves StreamSessionLogs without the router when the request allows (see fetch-log-stream.ts). */
  logStreams?: LogStreams;
  /** Aborting ends open streams with UNAVAILABLE so clients reconnect elsewhere. */
  signal: AbortSignal;
  /** CORS_ORIGINS: web origins whose pages may call; none = no CORS headers at all. */
  corsOrigins?: readonly string[];
}

// 2 hours: the longest preflight cache Chromium honours; the answer never
// changes while the process runs.
const PREFLIGHT_MAX_AGE_S = 7200;

/** Adds one route per RPC (Connect + gRPC-Web) to `app`; returns the paths served. */
export function mountRpc(app: App, options: MountRpcOptions): string[] {
  const shutdown = rpcShutdownSignal(options.signal);
  const router = createConnectRouter({ shutdownSignal: shutdown });
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
    const serve = async (req: Request, peer: string | undefined) => {
      const contextValues = createContextValues().set(PEER_ADDRESS, peer);
      return universalServerResponseToFetch(await handler({ ...universalServerRequestFromFetch(req, { httpVersion: "1.1" }), contextValues }));
    };
    const fastLogs = handler.requestPath === STREAM_SESSION_LOGS_PATH ? options.logStreams : undefined;
    if (origins.length > 0) app.use(handler.requestPath, corsHeaders);
    app.on(handler.allowedMethods, handler.requestPath, (c) => {
      // A log stream may stay quiet for minutes: keep Bun from closing it
      // after its idle timeout (oven-sh/bun#13392).
      if (handler.method.methodKind !== "unary") c.env?.keepOpen?.();
      const peer = c.env?.peer;
      const fast = fastLogs ? fetchLogStream(fastLogs, shutdown, c.req.raw, peer) : undefined;
      return fast ?? serve(c.req.raw, peer);
    });
    paths.push(handler.requestPath);
  }
  return paths;
}
