/**
 * Protected mode (no LOG_ACCESS_TOKEN, no OIDC, LOG_ACCESS unset): a client
 * on another address gets PERMISSION_DENIED saying how to configure access,
 * over all three protocols, while this machine's loopback clients stream as
 * before. LOG_ACCESS=open lets the remote client in; with a token it gets in
 * by sending it. "Remote" is this machine's own non-loopback address (from
 * os.networkInterfaces()): a different peer address, still this machine.
 * Without one, the decision is covered by src/rpc/access.test.ts alone.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { networkInterfaces } from "node:os";
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { LogProcessor } from "../../src/gen/manman/v1/log_processor_pb.ts";
import { createVhost, waitFor, type TestVhost } from "../support/services.ts";
import { hostManager, PROTOCOLS, startLogStack, take, type HostManager, type LogStack, type Protocol } from "./support.ts";

setDefaultTimeout(60_000);

const own = Object.values(networkInterfaces())
  .flat()
  .find((a) => a && !a.internal && a.family === "IPv4")?.address;

let vhost: TestVhost;
let hm: HostManager;
const stacks: Record<"protectedMode" | "open" | "token", LogStack> = {} as never;

beforeAll(async () => {
  if (!own) return;
  vhost = await createVhost("mmlogprot");
  // 0.0.0.0: reachable on loopback and on the machine's own address.
  stacks.protectedMode = await startLogStack(vhost.url, {}, { listen: "0.0.0.0" });
  stacks.open = await startLogStack(vhost.url, { LOG_ACCESS: "open" }, { listen: "0.0.0.0" });
  stacks.token = await startLogStack(vhost.url, { LOG_ACCESS_TOKEN: "tok" }, { listen: "0.0.0.0" });
  hm = await hostManager(vhost.url);
  await hm.line(3, "hello");
  await waitFor(() => Object.values(stacks).every((s) => s.ingest.ingested() >= 1), 20_000, "ingested");
});

afterAll(async () => {
  await hm?.close();
  for (const s of Object.values(stacks)) await s?.stop();
  await vhost?.remove();
});

/** A client that reaches the stack through `address` instead of 127.0.0.1. */
function clientAt(stack: LogStack, address: string, protocol: Protocol, token?: string) {
  const interceptors: Interceptor[] = token === undefined ? [] : [(next) => (req) => (req.header.set("authorization", `Bearer ${token}`), next(req))];
  const http = `http://${address}:${stack.httpPort}`;
  const transport =
    protocol === "connect"
      ? createConnectTransport({ baseUrl: http, interceptors })
      : protocol === "grpc-web"
        ? createGrpcWebTransport({ baseUrl: http, interceptors })
        : createGrpcTransport({ baseUrl: `http://${address}:${stack.grpcPort}`, interceptors });
  return createClient(LogProcessor, transport);
}

async function outcome(p: Promise<unknown>): Promise<{ code: Code | "ok"; message?: string }> {
  try {
    await p;
    return { code: "ok" };
  } catch (err) {
    const e = ConnectError.from(err);
    return { code: e.code, message: e.rawMessage };
  }
}

describe.skipIf(!own).each(PROTOCOLS)("over %s", (protocol) => {
  test("protected mode: a remote client is refused with PERMISSION_DENIED saying how to open access; loopback streams", async () => {
    const refused = await outcome(take(clientAt(stacks.protectedMode, own!, protocol), 3, 1));
    expect(refused.code).toBe(Code.PermissionDenied);
    expect(refused.message).toContain("protected mode");
    expect(refused.message).toContain("LOG_ACCESS_TOKEN");
    expect(refused.message).toContain("LOG_ACCESS=open");
    expect((await take(stacks.protectedMode.client(protocol), 3, 1))[0]!.message).toBe("hello");
    // The refused call never subscribed; the served one lets go when it ends.
    await waitFor(() => stacks.protectedMode.hub.subscriberCount() === 0, 5000, "no subscription left");
  });

  test("LOG_ACCESS=open: the remote client streams", async () => {
    expect((await take(clientAt(stacks.open, own!, protocol), 3, 1))[0]!.message).toBe("hello");
  });

  test("with a token: the remote client streams with it and is UNAUTHENTICATED without it", async () => {
    expect((await take(clientAt(stacks.token, own!, protocol, "tok"), 3, 1))[0]!.message).toBe("hello");
    expect((await outcome(take(clientAt(stacks.token, own!, protocol), 3, 1))).code).toBe(Code.Unauthenticated);
  });
});

test.skipIf(!own)("the router's path (gRPC+JSON, not the fast path) refuses a remote client too", async () => {
  const transport = createGrpcTransport({ baseUrl: `http://${own}:${stacks.protectedMode.grpcPort}`, useBinaryFormat: false });
  const refused = await outcome(take(createClient(LogProcessor, transport), 3, 1));
  expect(refused.code).toBe(Code.PermissionDenied);
  const local = createGrpcTransport({ baseUrl: `http://127.0.0.1:${stacks.protectedMode.grpcPort}`, useBinaryFormat: false });
  expect((await take(createClient(LogProcessor, local), 3, 1))[0]!.message).toBe("hello");
});

test.skipIf(!own)("the start line names each mode, and open is a warning", () => {
  const line = (s: LogStack) => s.logs.find((l) => l.component === "log_access" && String(l.msg).startsWith("log access:"))!;
  expect([line(stacks.protectedMode).mode, line(stacks.open).mode, line(stacks.token).mode]).toEqual(["protected", "open", "credentials"]);
  expect(line(stacks.open).level).toBe("warn");
  expect(line(stacks.protectedMode).level).toBe("info");
});
