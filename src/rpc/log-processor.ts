/**
 * The `manman.v1.LogProcessor` service (CONTRACT §5) on top of the log hub.
 * Transport-free: `routes` registers it on any Connect router, which the
 * fetch mount (Connect + gRPC-Web on the Hono app) and the HTTP/2 server
 * (native gRPC) each build; `streams` is what their hand-written stream
 * paths share with the router's handler (see log-stream-call.ts). Create it
 * once per process.
 */
import type { ConnectError, ConnectRouter, HandlerContext } from "@connectrpc/connect";
import { LogProcessor, type LogMessage, type StreamSessionLogsRequest } from "../gen/manman/v1/log_processor_pb.ts";
import type { LogHub } from "../logs/hub.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import { callerOf, type AccessCheck } from "./access.ts";
import { createLogStreams, KEEP_OPEN, SERVER_INSTANCE_HEADER, type LogStreams } from "./log-stream-call.ts";
import type { StreamSlotsOptions } from "./stream-slots.ts";

export interface LogProcessorOptions {
  hub: LogHub;
  /** Who may call (access.ts); the wiring builds it from the settings and logs its mode. */
  access: AccessCheck;
  logger: Logger;
  metrics?: Metrics;
  /** This process's instance id (logs/server-instance.ts); a fresh one unless given. */
  instance?: string;
  /** LOG_STREAMS_MAX and LOG_STREAMS_PER_CLIENT_MAX; unlimited unless given. */
  limits?: StreamSlotsOptions;
}

export interface LogProcessorRpc {
  /** Registers the service on a router; give it to every transport. */
  routes(router: ConnectRouter): void;
  /** What a transport needs to serve StreamSessionLogs without the router (see log-stream-call.ts). */
  readonly streams: LogStreams;
}

export function createLogProcessor(options: LogProcessorOptions): LogProcessorRpc {
  const { hub, metrics } = options;
  const log = options.logger.child({ component: "log_rpc" });
  const streams = createLogStreams({ hub, access: options.access, log, metrics, instance: options.instance ?? crypto.randomUUID(), limits: options.limits });

  // The router's path (gRPC+JSON, compressed requests, Connect over h2c, …):
  // one line per message, so the subscription's bound applies as on the others.
  async function* streamSessionLogs(req: StreamSessionLogsRequest, ctx: HandlerContext): AsyncIterable<LogMessage> {
    // The router parsed and clamped the deadline itself (ctx.signal carries it).
    const call = streams.call({ signal: ctx.signal, keepOpen: ctx.values.get(KEEP_OPEN) });
    ctx.responseHeader.set(SERVER_INSTANCE_HEADER, streams.instance);
    let status: ConnectError | undefined;
    try {
      await call.admit(callerOf(ctx));
      call.open(req, ctx.requestHeader.get(SERVER_INSTANCE_HEADER));
      for (;;) {
        const [line] = await call.nextBatch(1);
        if (!line) break;
        yield streams.encodings.message(line);
      }
      status = call.ended();
    } catch (err) {
      status = call.failed(err);
    } finally {
      call.close();
    }
    if (status) throw status;
  }

  return {
    streams,
    routes: (router) => void router.service(LogProcessor, { streamSessionLogs }),
  };
}
