/**
 * StreamSessionLogs over the three protocols, against a real broker: a late
 * subscriber gets the backlog in order; resuming after a sequence number
 * returns only newer lines; live lines arrive on an open stream; 50 clients
 * of one session each get every line; sessions are isolated; malformed and
 * oversized messages don't break a stream.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { createConnectTransport as createNodeConnectTransport, createGrpcTransport, createGrpcWebTransport as createNodeGrpcWebTransport } from "@connectrpc/connect-node";
import { LogProcessor } from "../../src/gen/manman/v1/log_processor_pb.ts";
import { createVhost, waitFor, type TestVhost } from "../support/services.ts";
import { hostManager, PROTOCOLS, range, seqs, startLogStack, take, texts, watch, type HostManager, type LogStack } from "./support.ts";

// Real broker on a possibly busy 2-core machine: generous, but not hiding hangs.
setDefaultTimeout(60_000);

let vhost: TestVhost;
let stack: LogStack;
let hm: HostManager;
// Each test uses its own session ids so tests don't see each other's lines.
let nextSession = 1000;
const newSession = () => ++nextSession;

beforeAll(async () => {
  vhost = await createVhost("mmlogs");
  stack = await startLogStack(vhost.url, { LOG_BUFFER_MAX_MESSAGES: "20", LOG_LINE_MAX_BYTES: "1024" });
  hm = await hostManager(vhost.url);
});

afterAll(async () => {
  await hm?.close();
  await stack?.stop();
  await vhost?.remove();
});

/** Publishes lines and waits until the hub has them all. */
async function publish(sessionId: number, messages: string[]): Promise<void> {
  const before = stack.ingest.ingested();
  for (const m of messages) await hm.line(sessionId, m);
  await waitFor(() => stack.ingest.ingested() >= before + messages.length, 20_000, "lines ingested");
}

describe.each(PROTOCOLS)("over %s", (protocol) => {
  test("a late subscriber gets the backlog in order, sequence numbers rising by one", async () => {
    const s = newSession();
    await publish(s, range(1, 5).map((i) => `line ${i}`));
    const got = await take(stack.client(protocol), s, 5);
    expect(seqs(got)).toEqual([1, 2, 3, 4, 5]);
    expect(texts(got)).toEqual(["line 1", "line 2", "line 3", "line 4", "line 5"]);
    expect(got.every((m) => m.sessionId === BigInt(s) && m.source === "stdout" && m.timestamp > 0n)).toBe(true);
  });

  test("the backlog is the last LOG_BUFFER_MAX_MESSAGES lines", async () => {
    const s = newSession();
    await publish(s, range(1, 30).map((i) => `l${i}`));
    expect(seqs(await take(stack.client(protocol), s, 20))).toEqual(range(11, 30));
  });

  test("resume after a sequence number returns only newer lines", async () => {
    const s = newSession();
    await publish(s, range(1, 6).map((i) => `l${i}`));
    expect(seqs(await take(stack.client(protocol), s, 2, 4))).toEqual([5, 6]);
  });

  test("live lines arrive on an open stream", async () => {
    const s = newSession();
    await publish(s, ["before"]);
    const w = watch(stack.client(protocol), s);
    await waitFor(() => w.got.length === 1, 20_000, "backlog");
    await publish(s, ["live 1", "live 2"]);
    await waitFor(() => w.got.length === 3, 20_000, "live lines");
    expect(texts(w.got)).toEqual(["before", "live 1", "live 2"]);
    expect(seqs(w.got)).toEqual([1, 2, 3]);
    w.stop();
    expect(await w.done).toBeDefined(); // cancelled
  });

  test("sessions are isolated", async () => {
    const a = newSession();
    const b = newSession();
    const wa = watch(stack.client(protocol), a);
    const wb = watch(stack.client(protocol), b);
    await waitFor(() => stack.hub.subscriberCount(a) === 1 && stack.hub.subscriberCount(b) === 1, 20_000, "subscribed");
    await publish(a, ["a1"]);
    await publish(b, ["b1"]);
    await publish(a, ["a2"]);
    await waitFor(() => wa.got.length === 2 && wb.got.length === 1, 20_000, "both streams");
    expect(texts(wa.got)).toEqual(["a1", "a2"]);
    expect(texts(wb.got)).toEqual(["b1"]);
    expect(seqs(wb.got)).toEqual([1]);
    wa.stop();
    wb.stop();
  });

  test("malformed and oversized messages don't break a stream", async () => {
    const s = newSession();
    const w = watch(stack.client(protocol), s);
    await waitFor(() => stack.hub.subscriberCount(s) === 1, 20_000, "subscribed");
    const before = stack.ingest.ingested();
    await hm.line(s, "first");
    await hm.raw(`logs.session.${s}`, "{not json");
    await hm.raw(`logs.session.${s}`, new Uint8Array([0xff, 0xfe, 0x00]));
    await hm.raw(`logs.session.${s}`, JSON.stringify({ session_id: s, timestamp: 1, source: "syslog", message: "bad source" }));
    await hm.raw(`logs.session.${s}`, JSON.stringify({ session_id: "x", message: "no" }));
    await hm.line(s, "big ".repeat(2000));
    await hm.line(s, "after");
    await waitFor(() => stack.ingest.ingested() >= before + 3, 20_000, "good lines ingested");
    await waitFor(() => w.got.length === 3, 20_000, "stream got the good lines");
    expect(seqs(w.got)).toEqual([1, 2, 3]);
    expect(w.got[0].message).toBe("first");
    expect(w.got[1].message).toMatch(/^big big .*…\[truncated \d+ bytes\]$/);
    expect(new TextEncoder().encode(w.got[1].message).length).toBeLessThanOrEqual(1024);
    expect(w.got[2].message).toBe("after");
    expect(stack.logs.some((l) => l.msg === "skipped a malformed log line" && String(l.reason).length > 0)).toBe(true);
    w.stop();
  });
});

test("50 clients of one session each get every line in order (16 Connect, 17 gRPC-Web, 17 gRPC)", async () => {
  const s = newSession();
  const watchers = range(0, 49).map((i) => watch(stack.client(PROTOCOLS[i % 3]), s));
  await waitFor(() => stack.hub.subscriberCount(s) === 50, 20_000, "50 subscribers");
  await publish(s, range(1, 100).map((i) => `line ${i}`));
  await waitFor(() => watchers.every((w) => w.got.length === 100), 30_000, "every client got 100 lines");
  for (const w of watchers) {
    expect(seqs(w.got)).toEqual(range(1, 100));
    expect(w.got[99].message).toBe("line 100");
    w.stop();
  }
  await waitFor(() => stack.hub.subscriberCount(s) === 0, 20_000, "all streams released");
});

test("malformed messages are counted in metrics", async () => {
  const before = stack.metrics.get("manman_log_messages_rejected_total", { reason: "malformed" });
  await hm.raw("logs.session.5", "nope");
  await waitFor(() => stack.metrics.get("manman_log_messages_rejected_total", { reason: "malformed" }) > before, 10_000, "counted");
});

test("invalid requests fail with INVALID_ARGUMENT", async () => {
  const err = await take(stack.client("connect"), 0, 1).catch((e) => e);
  expect(String(err)).toMatch(/invalid_argument/);
});

test("the gRPC port also serves gRPC+JSON, Connect and gRPC-Web over HTTP/2 (through the router)", async () => {
  const s = newSession();
  await publish(s, ["one", "two"]);
  const base = `http://127.0.0.1:${stack.grpcPort}`;
  for (const transport of [
    createGrpcTransport({ baseUrl: base, useBinaryFormat: false }),
    createNodeConnectTransport({ baseUrl: base, httpVersion: "2" }),
    createNodeGrpcWebTransport({ baseUrl: base, httpVersion: "2" }),
  ]) {
    expect(texts(await take(createClient(LogProcessor, transport), s, 2))).toEqual(["one", "two"]);
  }
});

test.each(PROTOCOLS)("a client deadline ends a quiet %s stream with DEADLINE_EXCEEDED and frees it", async (protocol) => {
  const s = newSession();
  const err = await (async () => {
    for await (const _ of stack.client(protocol).streamSessionLogs({ sessionId: BigInt(s) }, { timeoutMs: 300 }));
  })().catch((e) => e);
  expect(ConnectError.from(err).code).toBe(Code.DeadlineExceeded);
  await waitFor(() => stack.hub.subscriberCount(s) === 0, 10_000, "freed");
});

test("Connect with the binary format streams too (connect-web's useBinaryFormat)", async () => {
  const s = newSession();
  await publish(s, ["bin 1", "bin 2"]);
  const client = createClient(LogProcessor, createConnectTransport({ baseUrl: `http://127.0.0.1:${stack.httpPort}`, useBinaryFormat: true }));
  const got = await take(client, s, 2);
  expect(texts(got)).toEqual(["bin 1", "bin 2"]);
  expect(seqs(got)).toEqual([1, 2]);
});
