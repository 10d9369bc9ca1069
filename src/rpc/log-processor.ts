/**
 * The `manman.v1.LogProcessor` service (CONTRACT §5) on top of the log hub.
 * Transport-free: `routes` registers it on any Connect router, which the
 * fetch mount (Connect + gRPC-Web on the Hono app) and the HTTP/2 server
 * (native gRPC) each build. Create it once per process.
 */
import type { ConnectRouter, HandlerContext } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { create, toBinary, toJsonString } from "@bufbuild/protobuf";
import { LogMessageSchema, LogProcessor, type LogMessage, type StreamSessionLogsRequest } from "../gen/manman/v1/log_processor_pb.ts";
import type { LogHub } from "../logs/hub.ts";
import type { LogLine } from "../logs/line.ts";
import { LogStreamLagged, type LogSubscription } from "../logs/subscriber.ts";
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
  /** What a transport needs to serve StreamSessionLogs without the router (see grpc-log-stream.ts). */
  readonly streams: LogStreamCore;
}

export interface LogStreamCore {
  /** Checks the token and the arguments (throwing ConnectError), then subscribes. */
  open(req: { sessionId: bigint; afterSequenceNumber: bigint }, authorization: string | null, signal: AbortSignal): { sub: LogSubscription; sessionId: number };
  /** The error a stream ends with, as the client should see it. */
  failure(err: unknown, sessionId: number, signal: AbortSignal): ConnectError;
  /** Counts a stream's end; reason as in failure() or "client_left". */
  ended(reason: string): void;
  /** The wire message of a line, built once and shared by every stream. */
  message(line: LogLine): LogMessage;
  /** The length-prefixed binary encoding of a line (gRPC, gRPC-Web, Connect), built once and shared. */
  envelope(line: LogLine): Uint8Array;
  /** The same with the proto3 JSON encoding (Connect with JSON), built once and shared. */
  jsonEnvelope(line: LogLine): Uint8Array;
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
  const messages = new WeakMap<LogLine, LogMessage>();
  const envelopes = new WeakMap<LogLine, Uint8Array>();
  const jsonEnvelopes = new WeakMap<LogLine, Uint8Array>();
  const reasons = new WeakMap<ConnectError, string>();

  const streams: LogStreamCore = {
    open(req, authorization, signal) {
      access.assert(authorization);
      const sessionId = checkedId("session_id", req.sessionId, 1n);
      const after = checkedId("after_sequence_number", req.afterSequenceNumber, 0n);
      const sub = hub.subscribe(sessionId, after, signal);
      metrics?.set(STREAMS_OPEN, "session log streams open now", hub.subscriberCount());
      return { sub, sessionId };
    },
    failure(err, sessionId, signal) {
      if (err instanceof LogStreamLagged) {
        log.info("log stream fell behind; ending it so the client reconnects", { session_id: sessionId, last_sent: err.lastDelivered });
        const e = new ConnectError(`${err.message}; reconnect with after_sequence_number=${err.lastDelivered}`, Code.ResourceExhausted);
        reasons.set(e, "fell_behind");
        return e;
      }
      if (err === undefined && signal.reason instanceof ConnectError && signal.reason.code === Code.Unavailable) {
        reasons.set(signal.reason, "shutdown");
        return signal.reason;
      }
      return ConnectError.from(err);
    },
    ended(reason) {
      metrics?.inc(STREAMS_ENDED, "session log streams ended, by reason", { reason });
      metrics?.set(STREAMS_OPEN, "session log streams open now", hub.subscriberCount());
    },
    message(l) {
      let m = messages.get(l);
      if (!m) {
        m = create(LogMessageSchema, {
          sessionId: BigInt(l.sessionId),
          timestamp: BigInt(l.timestamp),
          source: l.source,
          message: l.message,
          sequenceNumber: BigInt(l.seq),
        });
        messages.set(l, m);
      }
      return m;
    },
    envelope(l) {
      let e = envelopes.get(l);
      if (!e) envelopes.set(l, (e = envelop(toBinary(LogMessageSchema, streams.message(l)))));
      return e;
    },
    jsonEnvelope(l) {
      let e = jsonEnvelopes.get(l);
      if (!e) jsonEnvelopes.set(l, (e = envelop(utf8.encode(toJsonString(LogMessageSchema, streams.message(l))))));
      return e;
    },
  };

  async function* streamSessionLogs(req: StreamSessionLogsRequest, ctx: HandlerContext): AsyncIterable<LogMessage> {
    const { sub, sessionId } = streams.open(req, ctx.requestHeader.get("authorization"), ctx.signal);
    let reason = "client_left";
    try {
      for await (const line of sub) yield streams.message(line);
      const end = streams.failure(undefined, sessionId, ctx.signal);
      if (reasons.has(end)) {
        reason = reasons.get(end)!;
        throw end;
      }
    } catch (err) {
      const e = streams.failure(err, sessionId, ctx.signal);
      reason = reasons.get(e) ?? "error";
      throw e;
    } finally {
      sub.close();
      streams.ended(reason);
    }
  }

  return {
    access,
    streams,
    routes: (router) => void router.service(LogProcessor, { streamSessionLogs }),
  };
}

const utf8 = new TextEncoder();

/** The 5-byte prefix of every streamed message: flags 0, then the length. */
function envelop(bytes: Uint8Array): Uint8Array {
  const e = new Uint8Array(5 + bytes.length);
  new DataView(e.buffer).setUint32(1, bytes.length);
  e.set(bytes, 5);
  return e;
}

/** int64 → a safe JS number, or INVALID_ARGUMENT. */
function checkedId(field: string, value: bigint, min: bigint): number {
  if (value < min || value > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new ConnectError(`${field} must be between ${min} and ${Number.MAX_SAFE_INTEGER}`, Code.InvalidArgument);
  }
  return Number(value);
}
