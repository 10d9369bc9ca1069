/**
 * The `manman.v1.LogProcessor` service (CONTRACT §5) on top of the log hub.
 * Transport-free: `routes` registers it on any Connect router, which the
 * fetch mount (Connect + gRPC-Web on the Hono app) and the HTTP/2 server
 * (native gRPC) each build. Create it once per process.
 */
import type { ConnectRouter, HandlerContext } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { LogProcessor, type LogMessage, type StreamSessionLogsRequest } from "../gen/manman/v1/log_processor_pb.ts";
import type { LogHub, LogLine } from "../logs/hub.ts";
import { LogStreamLagged } from "../logs/hub.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import { createAccessCheck, type AccessCheck } from "./access.ts";

export interface LogProcessorOptions {
  hub: LogHub;
  /** LOG_ACCESS_TOKEN; empty = open to anyone who can reach the ports. */
  accessTokens: readonly string[];
  logger: Logger;
  metrics?: Metrics;
}

export interface LogProcessorRpc {
  /** Registers the service on a router; give it to every transport. */
  routes(router: ConnectRouter): void;
  readonly access: AccessCheck;
}

const STREAMS_OPEN = "manman_log_streams_open";
const STREAMS_ENDED = "manman_log_streams_ended_total";

export function createLogProcessor(options: LogProcessorOptions): LogProcessorRpc {
  const { hub, metrics } = options;
  const log = options.logger.child({ component: "log_rpc" });
  const access = createAccessCheck(options.accessTokens);
  if (!access.required) {
    log.warn("LOG_ACCESS_TOKEN is not set: anyone who reaches the HTTP or gRPC port can read every session's logs");
  }
  // One wire message per line, shared by every stream that sends it.
  const wire = new WeakMap<LogLine, LogMessage>();
  const toWire = (l: LogLine): LogMessage => {
    let m = wire.get(l);
    if (!m) {
      m = {
        $typeName: "manman.v1.LogMessage",
        sessionId: BigInt(l.sessionId),
        timestamp: BigInt(l.timestamp),
        source: l.source,
        message: l.message,
        sequenceNumber: BigInt(l.seq),
      };
      wire.set(l, m);
    }
    return m;
  };
  const ended = (reason: string) => {
    metrics?.inc(STREAMS_ENDED, "session log streams ended, by reason", { reason });
    metrics?.set(STREAMS_OPEN, "session log streams open now", hub.subscriberCount());
  };

  async function* streamSessionLogs(req: StreamSessionLogsRequest, ctx: HandlerContext): AsyncIterable<LogMessage> {
    access.assert(ctx.requestHeader.get("authorization"));
    const sessionId = checkedId("session_id", req.sessionId, 1n);
    const after = checkedId("after_sequence_number", req.afterSequenceNumber, 0n);
    const sub = hub.subscribe(sessionId, after, ctx.signal);
    metrics?.set(STREAMS_OPEN, "session log streams open now", hub.subscriberCount());
    let reason = "client_left";
    try {
      for await (const line of sub) yield toWire(line);
      if (ctx.signal.reason instanceof ConnectError) {
        reason = "shutdown";
        throw ctx.signal.reason;
      }
    } catch (err) {
      if (err instanceof LogStreamLagged) {
        reason = "fell_behind";
        log.info("log stream fell behind; ending it so the client reconnects", { session_id: sessionId, last_sent: err.lastDelivered });
        throw new ConnectError(
          `${err.message}; reconnect with after_sequence_number=${err.lastDelivered}`,
          Code.ResourceExhausted,
        );
      }
      if (reason === "client_left") reason = "error";
      throw err;
    } finally {
      sub.close();
      ended(reason);
    }
  }

  return {
    access,
    routes: (router) => void router.service(LogProcessor, { streamSessionLogs }),
  };
}

/** int64 → a safe JS number, or INVALID_ARGUMENT. */
function checkedId(field: string, value: bigint, min: bigint): number {
  if (value < min || value > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new ConnectError(`${field} must be between ${min} and ${Number.MAX_SAFE_INTEGER}`, Code.InvalidArgument);
  }
  return Number(value);
}
