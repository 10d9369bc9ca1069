/**
 * Connect and gRPC-Web on the Hono app (HEALTH_CHECK_PORT), through the
 * fetch-based universal handlers of @connectrpc/connect: connect-node's
 * HTTP/1.1 adapter has had bugs on Bun (connect-es#877, #1275), these use
 * only web standards. A browser needs nothing else: CORS uses Connect's own
 * header lists, plus Authorization for LOG_ACCESS_TOKEN.
 */
import { createConnectRouter, cors as connectCors, type ConnectRouter } from "@connectrpc/connect";
import { createFetchHandler } from "@connectrpc/connect/protocol";
import { cors } from "hono/cors";
import type { App } from "../http/app.ts";
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
}

// 2 hours: the longest preflight cache Chromium honours; the answer never
// changes while the process runs.
const PREFLIGHT_MAX_AGE_S = 7200;

/** Adds one route per RPC (Connect + gRPC-Web) to `app`; returns the paths served. */
export function mountRpc(app: App, options: MountRpcOptions): string[] {
  const shutdown = rpcShutdownSignal(options.signal);
  const router = createConnectRouter({ shutdownSignal: shutdown });
  options.routes(router);
  const corsHeaders = cors({
    // Bearer tokens, not cookies, guard the service: any page may call it.
    origin: "*",
    allowMethods: [...connectCors.allowedMethods],
    // The instance header both ways: a page names the numbering it resumes
    // from, and reads whose numbering it gets (logs/server-instance.ts).
    allowHeaders: [...connectCors.allowedHeaders, "Authorization", SERVER_INSTANCE_HEADER],
    exposeHeaders: [...connectCors.exposedHeaders, SERVER_INSTANCE_HEADER],
    maxAge: PREFLIGHT_MAX_AGE_S,
  });
  const paths: string[] = [];
  for (const handler of router.handlers) {
    const serve = createFetchHandler(handler, { httpVersion: "1.1" });
    const fastLogs = handler.requestPath === STREAM_SESSION_LOGS_PATH ? options.logStreams : undefined;
    app.use(handler.requestPath, corsHeaders);
    app.on(handler.allowedMethods, handler.requestPath, (c) => {
      // A log stream may stay quiet for minutes: keep Bun from closing it
      // after its idle timeout (oven-sh/bun#13392).
      if (handler.method.methodKind !== "unary") c.env?.keepOpen?.();
      const fast = fastLogs ? fetchLogStream(fastLogs, shutdown, c.req.raw) : undefined;
      return fast ?? serve(c.req.raw);
    });
    paths.push(handler.requestPath);
  }
  return paths;
}
