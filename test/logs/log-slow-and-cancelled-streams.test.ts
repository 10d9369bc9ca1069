/**
 * Slow and gone clients: 200 cancelled streams leave no subscribers behind;
 * a stalled client gets RESOURCE_EXHAUSTED while others keep up.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { connect as tcpConnect, type Socket } from "node:net";
import { connect as h2Connect } from "node:http2";
import { createVhost, waitFor, type TestVhost } from "../support/services.ts";
import { hostManager, PROTOCOLS, range, seqs, startLogStack, watch, type HostManager, type LogStack } from "./support.ts";

// Real broker on a possibly busy 2-core machine: generous, but not hiding hangs.
setDefaultTimeout(60_000);

let vhost: TestVhost;
let stack: LogStack;
let hm: HostManager;

beforeAll(async () => {
  vhost = await createVhost("mmlogslow");
  // 2 MiB per stream (~128 of the test's 16 KB lines): a stalled client
  // overflows once socket buffers (a few MB) and this are full.
  stack = await startLogStack(vhost.url, { LOG_STREAM_MAX_PENDING_BYTES: String(2 * 1024 * 1024), LOG_BUFFER_MAX_MESSAGES: "100" });
  hm = await hostManager(vhost.url);
});

afterAll(async () => {
  await hm?.close();
  await stack?.stop();
  await vhost?.remove();
});

test("200 cancelled streams leave no subscribers behind", async () => {
  const s = 77;
  const streams = range(0, 199).map((i) => watch(stack.client(PROTOCOLS[i % 3]), s));
  await waitFor(() => stack.hub.subscriberCount(s) === 200, 30_000, "200 subscribers");
  for (const w of streams) w.stop();
  await waitFor(() => stack.hub.subscriberCount() === 0, 20_000, "no subscribers left");
  await Promise.all(streams.map((w) => w.done));
});

test("a client that disconnects without cancelling (socket destroyed) is freed", async () => {
  const s = 78;
  const sock = await rawConnectStream(stack.httpPort, s);
  await waitFor(() => stack.hub.subscriberCount(s) === 1, 20_000, "subscribed");
  sock.destroy();
  await waitFor(() => stack.hub.subscriberCount(s) === 0, 20_000, "freed after the socket died");
});

/** Opens a Connect stream over a raw socket that reads nothing (yet). */
function rawConnectStream(port: number, sessionId: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const json = new TextEncoder().encode(JSON.stringify({ sessionId: String(sessionId) }));
    const envelope = new Uint8Array(5 + json.length);
    new DataView(envelope.buffer).setUint32(1, json.length);
    envelope.set(json, 5);
    const sock = tcpConnect(port, "127.0.0.1", () => {
      sock.write(
        `POST /manman.v1.LogProcessor/StreamSessionLogs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/connect+json\r\nConnect-Protocol-Version: 1\r\nContent-Length: ${envelope.length}\r\n\r\n`,
      );
      sock.write(envelope);
      sock.pause(); // a stalled client: nothing is read until readAll()
      resolve(sock);
    });
    sock.once("error", reject);
  });
}

test("a stalled Connect client gets RESOURCE_EXHAUSTED while others keep up", async () => {
  const s = 90;
  await hm.line(s, "hello");
  const stalled = await rawConnectStream(stack.httpPort, s);
  const others = PROTOCOLS.map((p) => watch(stack.client(p), s));
  await waitFor(() => stack.hub.subscriberCount(s) === 4, 20_000, "4 subscribers");
  // 3,000 lines of 8 KB: 24 MB, far beyond socket buffers plus the bound.
  const big = "z".repeat(8000);
  await publishPaced(s, 3000, big, others);
  await waitFor(() => others.every((w) => w.got.length === 3001), 60_000, "others got every line");
  for (const w of others) expect(seqs(w.got)).toEqual(range(1, 3001));
  // The stalled stream was dropped as soon as it overflowed.
  expect(stack.hub.subscriberCount(s)).toBe(3);
  // Reading again, the client finds the end of its stream with the code.
  const rest = await readAll(stalled);
  expect(rest).toContain("resource_exhausted");
  expect(rest).toContain("after_sequence_number=");
  for (const w of others) w.stop();
});

/**
 * The clients that keep up live in this same process, on the same (busy)
 * cores as the server and the publisher: the publisher waits for them every
 * 50 lines, so they are never more than ~100 lines (~1.6 MB) behind — under
 * the 2 MiB bound however slow the machine — while the stalled client
 * falls further behind with every line.
 */
async function publishPaced(sessionId: number, n: number, text: string, keepingUp: { got: unknown[] }[]): Promise<void> {
  const start = keepingUp.map((w) => w.got.length);
  for (let i = 0; i < n; i++) {
    await hm.line(sessionId, `${i} ${text}`);
    if (i % 50 === 49) {
      const want = i + 1 - 50;
      await waitFor(() => keepingUp.every((w, k) => w.got.length - start[k] >= want), 30_000, "clients keeping up");
    }
  }
}

function readAll(sock: Socket): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let tail = "";
    sock.on("data", (c: Buffer) => {
      chunks.push(c);
      tail = (tail + c.toString("latin1")).slice(-4096);
      // Connect's end-of-stream message, then the chunked-encoding terminator.
      if (tail.includes('"error"') && tail.endsWith("0\r\n\r\n")) sock.end();
    });
    sock.on("close", () => resolve(Buffer.concat(chunks).toString("latin1").slice(-4096)));
    sock.resume();
  });
}

test("a stalled gRPC (HTTP/2) client gets RESOURCE_EXHAUSTED while others keep up", async () => {
  const s = 91;
  await hm.line(s, "hello");
  const session = h2Connect(`http://127.0.0.1:${stack.grpcPort}`);
  const req = session.request({
    ":method": "POST",
    ":path": "/manman.v1.LogProcessor/StreamSessionLogs",
    "content-type": "application/grpc",
    te: "trailers",
  });
  // StreamSessionLogsRequest{session_id: 91}: field 1 varint.
  req.end(Buffer.from([0, 0, 0, 0, 2, 0x08, s]));
  let trailers: Record<string, unknown> | undefined;
  req.on("trailers", (t) => (trailers = t));
  await new Promise((r) => req.once("response", r));
  req.pause();
  const other = watch(stack.client("grpc"), s);
  await waitFor(() => stack.hub.subscriberCount(s) === 2, 20_000, "2 subscribers");
  const big = "q".repeat(8000);
  await publishPaced(s, 3000, big, [other]);
  await waitFor(() => other.got.length === 3001, 60_000, "the other client got every line");
  expect(stack.hub.subscriberCount(s)).toBe(1);
  req.resume();
  req.on("data", () => {});
  await waitFor(() => trailers, 20_000, "trailers");
  expect(trailers!["grpc-status"]).toBe("8"); // RESOURCE_EXHAUSTED
  other.stop();
  session.close();
});
