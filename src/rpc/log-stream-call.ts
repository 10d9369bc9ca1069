/**
 * One StreamSessionLogs call, whatever carries it. The Connect router's
 * handler (log-processor.ts), Connect and gRPC-Web on the fetch side
 * (fetch-log-stream.ts) and native gRPC (grpc-log-stream.ts) each start one
 * per call and only move bytes; the call owns the rest:
 *
 * - who may call (access.ts), a slot among LOG_STREAMS_MAX in all and
 *   LOG_STREAMS_PER_CLIENT_MAX per client address (stream-slots.ts; refused
 *   with RESOURCE_EXHAUSTED and counted), the argument checks, and the
 *   subscription to the hub; only then is the runtime's idle timeout
 *   relaxed for it (`keepOpen`), so an unadmitted or unread request never
 *   outlives that timeout;
 * - what ends it: the server shutting down (UNAVAILABLE, so clients
 *   reconnect, to another replica if need be), its deadline
 *   (DEADLINE_EXCEEDED), the client leaving (CANCELED: nobody to tell);
 * - the status it ends with, and the metrics: streams open, and streams
 *   ended by reason (client_left, fell_behind, shutdown, error, …).
 *
 * Use: `admit()` (before reading the request), `open()`; `nextBatch()` until it returns [] (then `ended()`) or
 * throws (then `failed(err)`); send the status those return, if any; and
 * `close()` in every case, which is idempotent.
 */
import { Code, ConnectError, createContextKey } from "@connectrpc/connect";
import type { LogHub } from "../logs/hub.ts";
import { SERVER_INSTANCE_HEADER } from "../logs/server-instance.ts";
import type { LogLine } from "../logs/line.ts";
import { LogStreamLagged, type LogSubscription } from "../logs/subscriber.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import { onAbort } from "../util/abort.ts";
import type { AccessCheck, Caller } from "./access.ts";
import { LogEncodings } from "./log-encoding.ts";
import { clampDeadline } from "./request-limits.ts";
import { StreamSlots, type StreamSlotsOptions } from "./stream-slots.ts";

export interface LogStreamCallEnds {
  /** The server's shutdown signal; its reason (UNAVAILABLE) is what the client is told. */
  shutdown?: AbortSignal;
  /** From the request's grpc-timeout or connect-timeout-ms; clamped to MAX_DEADLINE_MS. */
  timeoutMs?: number;
  /** Relaxes the runtime's idle timeout for this request (runtime/types.ts); called once the stream is open. */
  keepOpen?: () => void;
  /**
   * Another signal that ends the call: the request's, or the router's
   * handler signal. A reason that is not a ConnectError means the client left.
   */
  signal?: AbortSignal;
}

/** What every transport is given, once per process. */
export interface LogStreams {
  /** Starts a call: its deadline runs and its end signals are watched from now on. */
  call(ends: LogStreamCallEnds): LogStreamCall;
  /** Each line's wire forms, built once and shared by every stream. */
  readonly encodings: LogEncodings;
  /** This process's numbering, for the SERVER_INSTANCE_HEADER response header of every stream. */
  readonly instance: string;
}

export interface LogStreamsOptions {
  hub: LogHub;
  access: AccessCheck;
  log: Logger;
  metrics?: Metrics;
  /** The process's instance id (logs/server-instance.ts). */
  instance: string;
  /** LOG_STREAMS_MAX and LOG_STREAMS_PER_CLIENT_MAX; unlimited when not given (unit tests). */
  limits?: StreamSlotsOptions;
}

export { SERVER_INSTANCE_HEADER };

/** The runtime's keepOpen for a router call (fetch.ts sets it; the router's StreamSessionLogs calls it once open). */
export const KEEP_OPEN = createContextKey<(() => void) | undefined>(undefined, { description: "relaxes the idle timeout of this request" });

export function createLogStreams(options: LogStreamsOptions): LogStreams {
  const encodings = new LogEncodings();
  const slots = new StreamSlots(options.limits ?? { max: Infinity, maxPerClient: Infinity });
  return { encodings, instance: options.instance, call: (ends) => new LogStreamCall(options, slots, ends) };
}

const STREAMS_OPEN = "manman_log_streams_open";
const STREAMS_ENDED = "manman_log_streams_ended_total";
const STREAMS_REFUSED = "manman_log_streams_refused_total";
const REFUSALS = {
  total: "LOG_STREAMS_MAX log streams are open on this server; try again later or another replica",
  per_client: "LOG_STREAMS_PER_CLIENT_MAX log streams are open from this address; close one first",
};

/** The reason an end is counted under, by the status the client got. */
const END_REASONS: Partial<Record<Code, string>> = {
  [Code.ResourceExhausted]: "fell_behind",
  [Code.Unavailable]: "shutdown",
  [Code.Unauthenticated]: "unauthenticated",
};

export class LogStreamCall {
  private readonly controller = new AbortController();
  private readonly disposers: (() => void)[] = [];
  private sub: LogSubscription | undefined;
  private sessionId = 0;
  private admitted = false;
  private releaseSlot: (() => void) | undefined;
  private readonly keepOpen: (() => void) | undefined;
  private reason = "client_left";
  private closed = false;

  constructor(
    private readonly deps: LogStreamsOptions,
    private readonly slots: StreamSlots,
    ends: LogStreamCallEnds,
  ) {
    const { shutdown, signal } = ends;
    const timeoutMs = clampDeadline(ends.timeoutMs);
    this.keepOpen = ends.keepOpen;
    if (shutdown) this.disposers.push(onAbort(shutdown, () => this.controller.abort(shutdown.reason)));
    if (signal) this.disposers.push(onAbort(signal, () => (signal.reason instanceof ConnectError ? this.controller.abort(signal.reason) : this.clientGone())));
    if (timeoutMs !== undefined) {
      const timer = setTimeout(() => this.controller.abort(new ConnectError("deadline exceeded", Code.DeadlineExceeded)), timeoutMs);
      this.disposers.push(() => clearTimeout(timer));
    }
  }

  /** Aborts when the call has to end; its reason says why. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** The transport saw the client go (its connection or request closed). */
  clientGone(): void {
    this.controller.abort(new ConnectError("client went away", Code.Canceled));
  }

  /**
   * Checks who is calling (token, or loopback in protected mode), then takes
   * a stream slot for the caller's address; throws ConnectError
   * (RESOURCE_EXHAUSTED when no slot is free, counted by reason). Call it
   * before reading the request body: a refused caller costs no body read.
   */
  async admit(caller: Caller): Promise<void> {
    await this.deps.access.admit(caller);
    if (this.closed) throw new ConnectError("the call ended while its caller was checked", Code.Canceled);
    const slot = this.slots.take(caller.peer);
    if (typeof slot === "string") {
      this.deps.metrics?.inc(STREAMS_REFUSED, "session log streams refused for want of a slot, by which cap", { reason: slot });
      throw new ConnectError(REFUSALS[slot], Code.ResourceExhausted);
    }
    this.releaseSlot = slot;
    this.admitted = true;
  }

  /**
   * Checks the arguments (throwing ConnectError), then subscribes; only
   * after `admit()`. `numberedBy` is the client's SERVER_INSTANCE_HEADER: when it
   * names another process, its after_sequence_number is that process's and
   * says nothing here, so the stream starts at the oldest buffered line (a
   * line twice rather than a gap; the response header tells the client).
   */
  open(request: { sessionId: bigint; afterSequenceNumber: bigint }, numberedBy: string | null = null): void {
    const { hub, metrics } = this.deps;
    if (!this.admitted) throw new ConnectError("the call was opened before its caller was admitted", Code.Internal);
    const sessionId = checkedId("session_id", request.sessionId, 1n);
    const asked = checkedId("after_sequence_number", request.afterSequenceNumber, 0n);
    const after = numberedBy && numberedBy !== this.deps.instance ? 0 : asked;
    this.sub = hub.subscribe(sessionId, after, this.signal);
    this.sessionId = sessionId;
    metrics?.set(STREAMS_OPEN, "session log streams open now", hub.subscriberCount());
    // Admitted, read and subscribed: now it may stay quiet for as long as the session does.
    this.keepOpen?.();
  }

  /** Waits for a line, then takes up to `max` waiting ones; [] once the call has ended. Throws when the stream fell behind. */
  nextBatch(max: number): Promise<LogLine[]> {
    return this.sub!.nextBatch(max);
  }

  /** After nextBatch returned []: the status to send, or undefined when the client left (nobody to tell). */
  ended(): ConnectError | undefined {
    const why = this.signal.reason;
    const status = why instanceof ConnectError && why.code !== Code.Canceled ? why : undefined;
    this.reason = status ? (END_REASONS[status.code] ?? "error") : "client_left";
    return status;
  }

  /** After something threw (a bad request, a refused token, a stream that fell behind): the status to send. */
  failed(err: unknown): ConnectError {
    let status: ConnectError;
    if (err instanceof LogStreamLagged) {
      this.deps.log.info("log stream fell behind; ending it so the client reconnects", { session_id: this.sessionId, last_sent: err.lastDelivered });
      status = new ConnectError(`${err.message}; reconnect with after_sequence_number=${err.lastDelivered}`, Code.ResourceExhausted);
    } else {
      status = ConnectError.from(err);
    }
    this.reason = END_REASONS[status.code] ?? "error";
    return status;
  }

  /** Frees the subscription, the timer and the listeners, and counts the end (of an opened call). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.releaseSlot?.();
    for (const dispose of this.disposers) dispose();
    if (!this.sub) return;
    this.sub.close();
    const { hub, metrics } = this.deps;
    metrics?.inc(STREAMS_ENDED, "session log streams ended, by reason", { reason: this.reason });
    metrics?.set(STREAMS_OPEN, "session log streams open now", hub.subscriberCount());
  }
}

/** int64 → a safe JS number, or INVALID_ARGUMENT. */
function checkedId(field: string, value: bigint, min: bigint): number {
  if (value < min || value > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new ConnectError(`${field} must be between ${min} and ${Number.MAX_SAFE_INTEGER}`, Code.InvalidArgument);
  }
  return Number(value);
}
