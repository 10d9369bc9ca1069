import { expect, test } from "bun:test";
import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import { LogProcessor } from "../gen/manman/v1/log_processor_pb.ts";
import { silentLogger } from "../log.ts";
import { createLogHub } from "../logs/hub.ts";
import { Metrics } from "../metrics.ts";
import { createAccessCheck } from "./access.ts";
import { createLogProcessor } from "./log-processor.ts";
import { createLogStreams } from "./log-stream-call.ts";
import { rpcShutdownSignal } from "./shutdown.ts";

function setup(maxPendingBytes = 1 << 20) {
  const hub = createLogHub({ maxLines: 10, ttlMs: 60_000, maxBytes: 1 << 20, maxPendingBytes });
  const metrics = new Metrics();
  const streams = createLogStreams({ hub, access: createAccessCheck(["tok"]), log: silentLogger, metrics, instance: "here" });
  const ended = (reason: string) => metrics.get("manman_log_streams_ended_total", { reason });
  return { hub, metrics, streams, ended };
}
const request = { sessionId: 7n, afterSequenceNumber: 0n };
const tok = { authorization: "Bearer tok", peer: undefined };
const line = (message: string) => ({ sessionId: 7, timestamp: 1, source: "stdout", message });

test("lines flow; shutdown ends the call with UNAVAILABLE, counted as shutdown", async () => {
  const { hub, streams, ended, metrics } = setup();
  const shutdown = new AbortController();
  const call = streams.call({ shutdown: rpcShutdownSignal(shutdown.signal) });
  await call.admit(tok);
  call.open(request);
  expect(metrics.get("manman_log_streams_open")).toBe(1);
  hub.append(line("a"));
  expect((await call.nextBatch(10)).map((l) => l.message)).toEqual(["a"]);
  shutdown.abort();
  expect(await call.nextBatch(10)).toEqual([]);
  expect(call.ended()?.code).toBe(Code.Unavailable);
  call.close();
  call.close();
  expect([ended("shutdown"), hub.subscriberCount(), metrics.get("manman_log_streams_open")]).toEqual([1, 0, 0]);
});

test("the deadline ends the call with DEADLINE_EXCEEDED, counted as error", async () => {
  const { streams, ended } = setup();
  const call = streams.call({ timeoutMs: 5 });
  await call.admit(tok);
  call.open(request);
  expect(await call.nextBatch(10)).toEqual([]);
  expect(call.ended()?.code).toBe(Code.DeadlineExceeded);
  call.close();
  expect(ended("error")).toBe(1);
});

test("a client that leaves gets nothing more and is counted as client_left, however the transport notices", async () => {
  const { streams, ended, hub } = setup();
  const request1 = new AbortController();
  const byRequest = streams.call({ signal: request1.signal });
  await byRequest.admit(tok);
  byRequest.open(request);
  request1.abort(); // a DOMException reason, as a fetch Request's signal has
  expect(await byRequest.nextBatch(1)).toEqual([]);
  expect(byRequest.ended()).toBeUndefined();
  byRequest.close();
  const byClose = streams.call({});
  await byClose.admit(tok);
  byClose.open(request);
  const waiting = byClose.nextBatch(1);
  byClose.clientGone();
  expect(await waiting).toEqual([]);
  expect(byClose.ended()).toBeUndefined();
  byClose.close();
  // Closed without asking how it ended (a cancelled response body).
  const cancelled = streams.call({});
  await cancelled.admit(tok);
  cancelled.open(request);
  cancelled.close();
  expect([ended("client_left"), hub.subscriberCount()]).toEqual([3, 0]);
});

test("a stream that falls behind fails with RESOURCE_EXHAUSTED, counted as fell_behind", async () => {
  const { hub, streams, ended } = setup(300);
  const call = streams.call({});
  await call.admit(tok);
  call.open(request);
  for (let i = 0; i < 5; i++) hub.append(line("x".repeat(50)));
  const err = await call.nextBatch(10).then(() => undefined, (e) => e);
  const status = call.failed(err);
  expect(status.code).toBe(Code.ResourceExhausted);
  expect(status.rawMessage).toContain("reconnect with after_sequence_number=0");
  call.close();
  expect(ended("fell_behind")).toBe(1);
});

test("a refused or invalid call is answered but not counted as a stream", async () => {
  const { streams, metrics } = setup();
  for (const [req, auth, code] of [
    [request, null, Code.Unauthenticated],
    [request, "Bearer nope", Code.Unauthenticated],
    [{ sessionId: 0n, afterSequenceNumber: 0n }, "Bearer tok", Code.InvalidArgument],
  ] as const) {
    const call = streams.call({});
    const status = await (async () => {
      try {
        await call.admit({ authorization: auth, peer: undefined });
        call.open(req);
      } catch (err) {
        return call.failed(err);
      }
    })();
    call.close();
    expect(status?.code).toBe(code);
  }
  expect(metrics.total("manman_log_streams_ended_total")).toBe(0);
});

test("the router's handler goes through the same call: lines, then UNAVAILABLE on shutdown", async () => {
  const hub = createLogHub({ maxLines: 10, ttlMs: 60_000, maxBytes: 1 << 20, maxPendingBytes: 1 << 20 });
  const metrics = new Metrics();
  const rpc = createLogProcessor({ hub, access: createAccessCheck({ access: "open" }), logger: silentLogger, metrics });
  const stop = new AbortController();
  const transport = createRouterTransport(rpc.routes, { router: { shutdownSignal: rpcShutdownSignal(stop.signal) } });
  const client = createClient(LogProcessor, transport);
  hub.append(line("a"));
  const got: string[] = [];
  const done = (async () => {
    for await (const m of client.streamSessionLogs({ sessionId: 7n })) {
      got.push(m.message);
      if (got.length === 2) stop.abort();
    }
  })().then(() => undefined, (e) => ConnectError.from(e));
  while (hub.subscriberCount(7) === 0) await Bun.sleep(1);
  hub.append(line("b"));
  expect((await done)?.code).toBe(Code.Unavailable);
  expect(got).toEqual(["a", "b"]);
  expect(metrics.get("manman_log_streams_ended_total", { reason: "shutdown" })).toBe(1);
  expect(hub.subscriberCount()).toBe(0);
});

test("a number from another process's numbering (named in the instance header) starts at the oldest buffered line; from this one, after it", async () => {
  const { hub, streams } = setup();
  for (const m of ["a", "b", "c"]) hub.append(line(m));
  const asked = { sessionId: 7n, afterSequenceNumber: 2n };
  const read = async (numberedBy: string | null) => {
    const call = streams.call({});
    await call.admit(tok);
    call.open(asked, numberedBy);
    const got = (await call.nextBatch(10)).map((l) => l.message);
    call.close();
    return got;
  };
  expect(streams.instance).toBe("here");
  expect(await read("here")).toEqual(["c"]);
  expect(await read(null)).toEqual(["c"]);
  expect(await read("elsewhere")).toEqual(["a", "b", "c"]);
});

test("streams past LOG_STREAMS_PER_CLIENT_MAX or LOG_STREAMS_MAX are refused with RESOURCE_EXHAUSTED before any body, and counted", async () => {
  const hub = createLogHub({ maxLines: 10, ttlMs: 60_000, maxBytes: 1 << 20, maxPendingBytes: 1 << 20 });
  const metrics = new Metrics();
  const streams = createLogStreams({ hub, access: createAccessCheck(["tok"]), log: silentLogger, metrics, instance: "here", limits: { max: 3, maxPerClient: 2 } });
  const from = (peer: string) => ({ authorization: "Bearer tok", peer });
  const refusal = async (peer: string) => {
    const call = streams.call({});
    try {
      await call.admit(from(peer));
      return call;
    } catch (err) {
      call.close();
      return call.failed(err);
    }
  };
  const [a1, a2] = [await refusal("10.0.0.1"), await refusal("10.0.0.1")];
  const third = await refusal("10.0.0.1");
  expect(third).toBeInstanceOf(ConnectError);
  expect((third as ConnectError).code).toBe(Code.ResourceExhausted);
  expect((third as ConnectError).rawMessage).toContain("LOG_STREAMS_PER_CLIENT_MAX");
  const b1 = await refusal("10.0.0.2");
  const over = await refusal("10.0.0.3");
  expect((over as ConnectError).rawMessage).toContain("LOG_STREAMS_MAX");
  expect(metrics.get("manman_log_streams_refused_total", { reason: "per_client" })).toBe(1);
  expect(metrics.get("manman_log_streams_refused_total", { reason: "total" })).toBe(1);
  // A slot comes back when its call closes, opened or not.
  (a1 as { close(): void }).close();
  expect((await refusal("10.0.0.3")) instanceof ConnectError).toBe(false);
  for (const c of [a2, b1]) (c as { close(): void }).close();
});

test("the idle timeout is relaxed only once the stream is open, never for a refused call", async () => {
  const { streams } = setup();
  let kept = 0;
  const refused = streams.call({ keepOpen: () => void kept++ });
  await refused.admit({ authorization: "Bearer nope", peer: undefined }).catch(() => {});
  refused.close();
  const invalid = streams.call({ keepOpen: () => void kept++ });
  await invalid.admit(tok);
  expect(() => invalid.open({ sessionId: 0n, afterSequenceNumber: 0n })).toThrow();
  invalid.close();
  expect(kept).toBe(0);
  const ok = streams.call({ keepOpen: () => void kept++ });
  await ok.admit(tok);
  ok.open(request);
  expect(kept).toBe(1);
  ok.close();
});

test("a deadline past 2^31-1 ms is clamped, not fired at once", async () => {
  const { streams, hub } = setup();
  const call = streams.call({ timeoutMs: 99_999_999 * 3_600_000 });
  await call.admit(tok);
  call.open(request);
  hub.append(line("a"));
  expect((await call.nextBatch(10)).map((l) => l.message)).toEqual(["a"]);
  await Bun.sleep(20);
  expect(call.signal.aborted).toBe(false);
  call.close();
});
