/**
 * What one RPC request may cost before it is served, on both ports: its
 * body is capped and must arrive within a deadline, and the client's
 * deadline header is clamped so no value can fire a timer at once. Bodies
 * are read only after the caller was admitted (access.ts); these limits
 * bound what an admitted or not-yet-refused request can hold.
 */
import { Code, ConnectError } from "@connectrpc/connect";

/**
 * 5 s for a whole request body: every request here is one message of at
 * most a few KiB, sent with its headers in one round trip; 5 s covers a
 * slow link's retransmissions (TCP's first retransmission waits 1 s). It
 * must stay under Bun's own limit, which drops a request not answered
 * within ~10 s however its body trickles, so the client is told why. A
 * client trickling bytes to hold a connection gets DEADLINE_EXCEEDED at 5 s
 * however it paces them.
 */
export const BODY_DEADLINE_MS = 5_000;

/**
 * 1 KiB: a StreamSessionLogsRequest is two int64s, at most ~60 bytes even
 * as JSON; anything bigger is not one.
 */
export const STREAM_REQUEST_MAX_BYTES = 1024;

/**
 * 4 KiB: the routers' `readMaxBytes` for LogProcessor and LogHistory (and
 * the most a body may carry to them). LogHistory's largest request is a
 * cursor of at most 100 characters plus four numbers (~200 bytes as JSON);
 * Connect's default is 4 GiB.
 */
export const RPC_REQUEST_MAX_BYTES = 4 * 1024;

/**
 * 32 KiB for SessionViewer: ListSessions takes up to 1,000 session_ids
 * (rpc/sessions.ts), ~22 KB as JSON strings, ~10 KB as protobuf.
 */
export const SESSION_LIST_REQUEST_MAX_BYTES = 32 * 1024;

/**
 * The longest client deadline honoured: 2^31-1 ms (~24.8 days), the
 * longest delay a JS timer keeps. A longer one (grpc-timeout allows ~11,000
 * years) would overflow the timer and fire at once; it is clamped to this.
 */
export const MAX_DEADLINE_MS = 2 ** 31 - 1;

/** A deadline in ms clamped to MAX_DEADLINE_MS (undefined stays undefined: no deadline). */
export function clampDeadline(ms: number | undefined): number | undefined {
  return ms === undefined ? undefined : Math.min(ms, MAX_DEADLINE_MS);
}

/**
 * The deadline headers with values past MAX_DEADLINE_MS rewritten to it,
 * for requests the Connect router parses itself (it would arm a timer with
 * the raw value). `parse` is framing.ts's parser of each header.
 */
export function clampDeadlineHeaders(get: (name: string) => string | null | undefined, set: (name: string, value: string) => void, parse: { grpc: (v: string | null | undefined) => number | undefined; connect: (v: string | null) => number | undefined }): void {
  const grpc = get("grpc-timeout");
  // grpc-timeout has at most 8 digits: 2,147,483 s is just under 2^31-1 ms.
  if (grpc && (parse.grpc(grpc) ?? 0) > MAX_DEADLINE_MS) set("grpc-timeout", `${Math.floor(MAX_DEADLINE_MS / 1000)}S`);
  const connect = get("connect-timeout-ms") ?? null;
  if (connect && (parse.connect(connect) ?? 0) > MAX_DEADLINE_MS) set("connect-timeout-ms", String(MAX_DEADLINE_MS));
}

export function bodyTooLarge(maxBytes: number): ConnectError {
  return new ConnectError(`request body larger than ${maxBytes} bytes`, Code.ResourceExhausted);
}

export function bodyTooSlow(deadlineMs: number): ConnectError {
  return new ConnectError(`request body not complete within ${deadlineMs / 1000} s`, Code.DeadlineExceeded);
}

/** A Content-Length header over `maxBytes` refuses the request before a byte of its body is read. */
export function assertLength(contentLength: string | null | undefined, maxBytes: number): void {
  if (contentLength && /^\d+$/.test(contentLength) && Number(contentLength) > maxBytes) throw bodyTooLarge(maxBytes);
}

/**
 * A fetch request body, whole, if it has at most `maxBytes` and arrives
 * within `deadlineMs`; otherwise the body is cancelled (the runtime
 * discards the rest) and a ConnectError thrown.
 */
export async function readBodyWithin(req: Request, maxBytes: number, deadlineMs = BODY_DEADLINE_MS): Promise<Uint8Array> {
  assertLength(req.headers.get("content-length"), maxBytes);
  const chunks: Uint8Array[] = [];
  for await (const chunk of boundedBody(req.body, maxBytes, deadlineMs)) chunks.push(chunk);
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) (out.set(c, at), (at += c.length));
  return out;
}

/**
 * The chunks of `body` as they come, failing with RESOURCE_EXHAUSTED past
 * `maxBytes` in all or DEADLINE_EXCEEDED once `deadlineMs` has passed since
 * the first read; either way the body is cancelled. For the Connect router,
 * which reads bodies without a timer.
 */
export async function* boundedBody(body: ReadableStream<Uint8Array> | null, maxBytes: number, deadlineMs = BODY_DEADLINE_MS): AsyncGenerator<Uint8Array> {
  if (!body) return;
  const reader = body.getReader();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(bodyTooSlow(deadlineMs)), deadlineMs)));
  late.catch(() => {});
  let size = 0;
  let done = false;
  try {
    for (;;) {
      const r = await Promise.race([reader.read(), late]);
      if (r.done) {
        done = true;
        return;
      }
      size += r.value.length;
      if (size > maxBytes) throw bodyTooLarge(maxBytes);
      yield r.value;
    }
  } finally {
    clearTimeout(timer);
    if (!done) reader.cancel().catch(() => {});
  }
}

/**
 * Marks a response to a request whose body was not read to its end:
 * HTTP/1.1 can only go on after the rest of that body, which a hostile
 * client may never send (or send 100 MB of), so the connection is closed
 * once the answer is out instead of drained or left to time out.
 */
export function closeAfter(res: Response): Response {
  res.headers.set("connection", "close");
  return res;
}
