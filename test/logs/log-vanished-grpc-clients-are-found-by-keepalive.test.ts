/**
 * A gRPC client that vanishes without closing its connection (the network
 * drops its packets: no FIN, no RST) is found by the server's HTTP/2 PINGs
 * and its quiet stream is freed. Intervals are shortened for the test.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { LogProcessor } from "../../src/gen/manman/v1/log_processor_pb.ts";
import { createVhost, waitFor, type TestVhost } from "../support/services.ts";
import { TcpProxy } from "../support/tcp-proxy.ts";
import { startLogStack, watch, type LogStack } from "./support.ts";

setDefaultTimeout(60_000);

let vhost: TestVhost;
let stack: LogStack;
let proxy: TcpProxy;

beforeAll(async () => {
  vhost = await createVhost("mmlogping");
  stack = await startLogStack(vhost.url, {}, { keepaliveIntervalMs: 500, keepaliveTimeoutMs: 1000 });
  proxy = await TcpProxy.start("127.0.0.1", stack.grpcPort);
});

afterAll(async () => {
  await proxy?.close();
  await stack?.stop();
  await vhost?.remove();
});

test("a frozen connection's stream is freed; a healthy one stays", async () => {
  const healthy = watch(stack.client("grpc"), 5);
  const lost = watch(createClient(LogProcessor, createGrpcTransport({ baseUrl: `http://127.0.0.1:${proxy.port}` })), 5);
  await waitFor(() => stack.hub.subscriberCount(5) === 2, 20_000, "two streams");
  proxy.freeze();
  await waitFor(() => stack.hub.subscriberCount(5) === 1, 20_000, "the frozen client's stream freed");
  // Several keepalive rounds later the healthy stream is still there.
  await Bun.sleep(2000);
  expect(stack.hub.subscriberCount(5)).toBe(1);
  expect(stack.logs.some((l) => l.msg === "closing a gRPC connection that stopped answering pings")).toBe(true);
  healthy.stop();
  lost.stop();
  proxy.thaw();
});
