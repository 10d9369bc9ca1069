import { expect, test } from "bun:test";
import { connect } from "node:http2";
import { silentLogger } from "../log.ts";
import { createLogHub } from "../logs/hub.ts";
import { createAccessCheck } from "./access.ts";
import { envelop } from "./framing.ts";
import { startGrpcServer } from "./grpc-server.ts";
import { createLogProcessor } from "./log-processor.ts";

async function server() {
  const hub = createLogHub({ maxLines: 10, ttlMs: 60_000, maxBytes: 1 << 20, maxPendingBytes: 1 << 20 });
  const access = createAccessCheck({ access: "open" });
  const rpc = createLogProcessor({ hub, access, logger: silentLogger });
  const stop = new AbortController();
  const g = await startGrpcServer({ port: 0, hostname: "127.0.0.1", routes: rpc.routes, logStreams: rpc.streams, logger: silentLogger, signal: stop.signal, access, streamsPerClient: 10, idle: { firstRequestMs: 300, idleMs: 300 } });
  return { hub, port: g.port, stop: () => (stop.abort(), g.stopped) };
}
const closedWithin = (c: ReturnType<typeof connect>, ms: number) =>
  Promise.race([new Promise<boolean>((r) => c.once("close", () => r(true))), Bun.sleep(ms).then(() => false)]);

test("a connection that completes no request in time is closed; one with an open stream is kept however quiet; an idle one is closed", async () => {
  const s = await server();
  const silent = connect(`http://127.0.0.1:${s.port}`);
  silent.on("error", () => {});
  expect(await closedWithin(silent, 3_000)).toBe(true);

  const streaming = connect(`http://127.0.0.1:${s.port}`);
  streaming.on("error", () => {});
  const req = streaming.request({ ":method": "POST", ":path": "/manman.v1.LogProcessor/StreamSessionLogs", "content-type": "application/grpc", te: "trailers" });
  req.on("error", () => {});
  req.end(envelop(new Uint8Array([0x08, 0x07])));
  await new Promise((r) => req.once("response", r));
  // Quiet for several idle periods: the open stream keeps its connection.
  expect(await closedWithin(streaming, 1_200)).toBe(false);
  req.close();
  // Now idle: closed after the idle period.
  expect(await closedWithin(streaming, 3_000)).toBe(true);
  expect(s.hub.subscriberCount()).toBe(0);
  await s.stop();
});
