/**
 * What one HTTP/2 connection on GRPC_PORT may hold, beyond the stream caps
 * of log-stream-call.ts: node:http2 (and Bun's version of it) sets no limit
 * on concurrent streams, and keeps a connection that never completes a
 * request for as long as the client likes.
 *
 * - SETTINGS: `maxConcurrentStreams` is LOG_STREAMS_PER_CLIENT_MAX plus
 *   room for unary calls (one client's streams fit one connection, as a gRPC
 *   client multiplexes them), further streams are refused with
 *   REFUSED_STREAM; `maxHeaderListSize` caps a request's headers.
 * - A connection must complete a request within FIRST_REQUEST_MS of
 *   connecting (a slowloris sending a preface, or a HEADERS frame, byte by
 *   byte), and one with no request open is closed after IDLE_CONNECTION_MS.
 *   Quiet log streams are open requests, so they are never cut by this; a
 *   vanished client is found by the PINGs in grpc-server.ts.
 */
import { constants, type Http2ServerRequest, type Http2ServerResponse, type Http2Session, type Settings } from "node:http2";
import { BODY_DEADLINE_MS } from "./request-limits.ts";

/**
 * 16 KiB of request headers: an OIDC bearer token is 1-4 KB, the rest of
 * a gRPC request's headers a few hundred bytes; gRPC C-core's own default
 * cap is 8-16 KiB. Bun's HTTP/1.1 side also refuses more than 16 KiB.
 */
export const MAX_HEADER_LIST_BYTES = 16 * 1024;
/** 100 unary calls (history pages) beside a client's streams on one connection. */
export const UNARY_STREAMS_PER_CONNECTION = 100;
/** 10 s, as Bun gives an HTTP/1.1 request to send its headers. */
export const FIRST_REQUEST_MS = 10_000;
/**
 * 60 s without an open request: a client between calls reconnects in one
 * round trip, while idle connections kept longer only serve whoever opens
 * thousands of them.
 */
export const IDLE_CONNECTION_MS = 60_000;
// Time for a GOAWAY'd connection's last frames before it is destroyed.
const CLOSE_GRACE_MS = 5000;

export function http2Settings(streamsPerClient: number): Settings {
  return { maxConcurrentStreams: Math.min(2 ** 31 - 1, streamsPerClient + UNARY_STREAMS_PER_CONNECTION), maxHeaderListSize: MAX_HEADER_LIST_BYTES };
}

export interface IdleTimings {
  firstRequestMs?: number;
  idleMs?: number;
}

/** Counts a connection's open requests and closes it when it has had none for too long. */
export class ConnectionIdle {
  private open = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly session: Http2Session,
    private readonly timings: IdleTimings,
    private readonly onIdle: (hadRequests: boolean) => void,
  ) {
    this.arm(timings.firstRequestMs ?? FIRST_REQUEST_MS, false);
    session.once("close", () => clearTimeout(this.timer));
  }

  /** A request arrived on this connection; it counts until its response closes. */
  track(res: Http2ServerResponse): void {
    this.open++;
    clearTimeout(this.timer);
    this.timer = undefined;
    res.once("close", () => {
      if (--this.open === 0) this.arm(this.timings.idleMs ?? IDLE_CONNECTION_MS, true);
    });
  }

  private arm(ms: number, hadRequests: boolean): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      if (this.open > 0) return;
      this.onIdle(hadRequests);
      // Nothing in flight on a connection that never completed a request:
      // destroy it. An idle one gets a GOAWAY first, then is destroyed all
      // the same (Bun's close() leaves a half-open session's socket open).
      if (!hadRequests) return this.session.destroy();
      this.session.close();
      setTimeout(() => this.session.destroy(), CLOSE_GRACE_MS).unref?.();
    }, ms);
  }
}

/**
 * For requests the Connect router reads (it reads bodies without a timer):
 * a body not complete within BODY_DEADLINE_MS resets the stream (CANCEL);
 * and once the router has answered a request whose body is still coming
 * (it refused it), the stream is reset (NO_ERROR) rather than left open
 * until the client stops sending.
 */
export function bodyDeadline(req: Http2ServerRequest, res: Http2ServerResponse, ms = BODY_DEADLINE_MS): void {
  let ended = false;
  const timer = setTimeout(() => {
    if (!ended && !res.closed) req.stream.close(constants.NGHTTP2_CANCEL);
  }, ms);
  const stop = () => ((ended = true), clearTimeout(timer));
  req.once("end", stop);
  res.once("close", stop);
  // Not on 'finish': Bun emits it only once the request side is done too.
  const end = res.end.bind(res) as (...args: unknown[]) => Http2ServerResponse;
  res.end = ((...args: unknown[]) => {
    const r = end(...args);
    if (!ended) setImmediate(() => req.stream.closed || req.stream.close(constants.NGHTTP2_NO_ERROR));
    return r;
  }) as Http2ServerResponse["end"];
}
