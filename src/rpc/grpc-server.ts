/**
 * Native gRPC over HTTP/2 cleartext on GRPC_PORT, for existing gRPC clients
 * (grpcurl, Go). gRPC needs HTTP trailers, which a fetch Response cannot
 * carry, so this is `node:http2` with connect-node's adapter (works on Bun
 * and Deno). The same port also answers Connect and gRPC-Web over h2c.
 *
 * Limits: connection SETTINGS and idle rules in http2-limits.ts; who may
 * call is decided from the headers before a body is read (the router's
 * requestGate, the fast path's admit); bodies capped (readMaxBytes) and
 * timed (BODY_DEADLINE_MS); deadline headers clamped (request-limits.ts).
 */
import { createServer, type Http2ServerRequest, type Http2Session } from "node:http2";
import { createContextValues, type ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { Logger } from "../log.ts";
import { onAbort } from "../util/abort.ts";
import { callerOf, PEER_ADDRESS, type AccessCheck } from "./access.ts";
import { connectTimeoutMs, grpcTimeoutMs } from "./framing.ts";
import { bodyDeadline, ConnectionIdle, http2Settings, type IdleTimings } from "./http2-limits.ts";
import { clampDeadlineHeaders, RPC_REQUEST_MAX_BYTES } from "./request-limits.ts";
import { rpcShutdownSignal } from "./shutdown.ts";
import { grpcLogStreamHandler } from "./grpc-log-stream.ts";
import type { LogStreams } from "./log-stream-call.ts";

export interface GrpcServerOptions {
  port: number;
  /** Default all interfaces, as the deployed log processor listens. */
  hostname?: string;
  routes: (router: ConnectRouter) => void;
  /** Serves StreamSessionLogs over plain gRPC without the router (see grpc-log-stream.ts). */
  logStreams?: LogStreams;
  logger: Logger;
  /** Aborting ends open calls with UNAVAILABLE, stops listening and closes connections. */
  signal: AbortSignal;
  /** Who may call: checked from the headers before any request body is read. */
  access: AccessCheck;
  /** LOG_STREAMS_PER_CLIENT_MAX: one client's streams fit one connection (http2-limits.ts). */
  streamsPerClient: number;
  /** Tests shorten these; see KEEPALIVE_* below. */
  keepaliveIntervalMs?: number;
  keepaliveTimeoutMs?: number;
  /** Tests shorten these; see http2-limits.ts. */
  idle?: IdleTimings;
}

export interface GrpcServer {
  /** The bound port (useful with port 0). */
  port: number;
  stopped: Promise<void>;
}

// 5 s: open calls have already been told to go away (UNAVAILABLE) when the
// signal fires; this only waits for those last frames to leave.
const CLOSE_GRACE_MS = 5000;
// A client that vanished without closing (power cut, a NAT that forgot the
// connection) leaves a quiet log stream open forever; an HTTP/2 PING every
// 60 s that is not answered within 20 s closes its connection and frees its
// streams. 60 s is well inside common idle limits of NATs and load
// balancers (AWS NLB 350 s, GCP 600 s), and one PING a minute costs nothing.
const KEEPALIVE_INTERVAL_MS = 60_000;
const KEEPALIVE_TIMEOUT_MS = 20_000;

export async function startGrpcServer(options: GrpcServerOptions): Promise<GrpcServer> {
  const log = options.logger.child({ component: "grpc" });
  const shutdown = rpcShutdownSignal(options.signal);
  const router = connectNodeAdapter({
    routes: options.routes,
    shutdownSignal: shutdown,
    // connect-node gzips messages over 1 KiB for clients that accept it: per
    // stream, so one line watched by 1,000 clients would be compressed 1,000
    // times, and on Bun it made streams of long lines stall. Log text goes
    // out as it is (the fetch router compresses nothing by default either).
    acceptCompression: [],
    // The client's address, for protected mode (access.ts).
    contextValues: (req) => createContextValues().set(PEER_ADDRESS, req.socket?.remoteAddress),
    readMaxBytes: RPC_REQUEST_MAX_BYTES,
    // Before the body is read: a refused caller costs no read, however large its body.
    requestGate: (ctx) => options.access.admit(callerOf(ctx)),
  });
  const fast = options.logStreams ? grpcLogStreamHandler(options.logStreams, shutdown) : undefined;
  const idle = new WeakMap<Http2Session, ConnectionIdle>();
  const server = createServer({ settings: http2Settings(options.streamsPerClient) }, (req, res) => {
    idle.get(req.stream.session as Http2Session)?.track(res);
    if (fast?.(req, res)) return;
    clampHeaders(req);
    bodyDeadline(req, res);
    void router(req, res);
  });
  const sessions = new Set<Http2Session>();
  const interval = options.keepaliveIntervalMs ?? KEEPALIVE_INTERVAL_MS;
  const timeout = options.keepaliveTimeoutMs ?? KEEPALIVE_TIMEOUT_MS;
  server.on("session", (s: Http2Session) => {
    sessions.add(s);
    idle.set(s, new ConnectionIdle(s, options.idle ?? {}, (hadRequests) => log.debug(hadRequests ? "closing an idle gRPC connection" : "closing a gRPC connection that sent no request in time")));
    const keepalive = setInterval(() => {
      const unanswered = setTimeout(() => {
        log.info("closing a gRPC connection that stopped answering pings");
        s.destroy();
      }, timeout);
      const sent = s.ping((err) => {
        clearTimeout(unanswered);
        if (err && !s.destroyed) s.destroy();
      });
      if (!sent) clearTimeout(unanswered);
    }, interval);
    s.once("close", () => {
      clearInterval(keepalive);
      sessions.delete(s);
    });
    // A client that vanishes without closing must not keep its streams open.
    s.on("error", (err) => log.debug("http2 session error", { error: err.message }));
  });
  server.on("error", (err) => log.error("gRPC server error", { error: err.message }));
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.hostname ?? "0.0.0.0", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : options.port;
  log.info("gRPC listening", { port });

  const stopped = new Promise<void>((resolve) => {
    onAbort(options.signal, () => {
      const timer = setTimeout(() => {
        for (const s of sessions) s.destroy();
      }, CLOSE_GRACE_MS);
      for (const s of sessions) s.close();
      server.close(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  });
  return { port, stopped };
}

/** The router arms a timer with the raw deadline header: clamp it first (request-limits.ts). */
function clampHeaders(req: Http2ServerRequest): void {
  const get = (n: string) => {
    const v = req.headers[n];
    return Array.isArray(v) ? v[0] : v;
  };
  clampDeadlineHeaders(get, (n, v) => void (req.headers[n] = v), { grpc: grpcTimeoutMs, connect: connectTimeoutMs });
}
