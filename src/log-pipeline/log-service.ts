/**
 * Live session logs, wired: ingest → hub → LogProcessor on the Hono app
 * (Connect + gRPC-Web) and on GRPC_PORT (native gRPC). One call for the
 * composition root; every part stops on `signal`.
 */
import type { ConnectRouter } from "@connectrpc/connect";
import type { BrokerSession } from "../amqp/connection.ts";
import type { Config } from "../config.ts";
import type { App } from "../http/app.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import { createLogHub, type LogHub } from "../logs/hub.ts";
import { mountRpc } from "../rpc/fetch.ts";
import { startGrpcServer } from "../rpc/grpc-server.ts";
import { createLogProcessor } from "../rpc/log-processor.ts";
import type { AccessCheck } from "../rpc/access.ts";
import { startLogIngest, type LogIngest } from "./ingest.ts";

export interface LogServiceOptions {
  config: Config;
  session: BrokerSession;
  /** The Hono app on HEALTH_CHECK_PORT; LogProcessor routes are added to it. */
  app: App;
  logger: Logger;
  metrics: Metrics;
  signal: AbortSignal;
  /** Who may call (log-access.ts), shared with LogHistory and SessionViewer. */
  access: AccessCheck;
  /** More services for the native gRPC port (LogHistory): the Hono app gets them from their own mounts. */
  grpcRoutes?: (router: ConnectRouter) => void;
}

export interface LogService {
  /** The bound native gRPC port (GRPC_PORT, or the OS's choice for 0). */
  grpcPort: number;
  hub: LogHub;
  ingest: LogIngest;
  /** This process's numbering of log lines (logs/server-instance.ts), for every RPC that names it. */
  instance: string;
  /** For readiness: true while this process consumes its log queue. */
  attached(): boolean;
  /** Settles once the ingest and the gRPC server have stopped. */
  stopped: Promise<void>;
}

export async function startLogService({ config, session, app, logger, metrics, signal, access, grpcRoutes }: LogServiceOptions): Promise<LogService> {
  const hub = createLogHub({
    maxLines: config.logBufferMaxMessages,
    ttlMs: config.logBufferTtl * 1000,
    maxBytes: config.logBufferMaxBytes,
    maxPendingBytes: config.logStreamMaxPendingBytes,
  });
  const ingest = await startLogIngest({ session, hub, config, logger, metrics, signal });
  // One id per process: the hub's numbering is the process's.
  const instance = crypto.randomUUID();
  const limits = { max: config.logStreamsMax, maxPerClient: config.logStreamsPerClientMax };
  const rpc = createLogProcessor({ hub, access, logger, metrics, instance, limits });
  mountRpc(app, { routes: rpc.routes, logStreams: rpc.streams, signal, corsOrigins: config.corsOrigins, access });
  const routes = (router: ConnectRouter) => (rpc.routes(router), grpcRoutes?.(router));
  const grpc = await startGrpcServer({ port: config.grpcPort, routes, logStreams: rpc.streams, logger, signal, access, streamsPerClient: config.logStreamsPerClientMax });
  return {
    grpcPort: grpc.port,
    hub,
    ingest,
    instance,
    attached: ingest.attached,
    stopped: Promise.all([ingest.stopped, grpc.stopped]).then(() => {}),
  };
}
