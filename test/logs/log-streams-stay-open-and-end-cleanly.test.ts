/**
 * A log stream stays open through a quiet period longer than Bun's default
 * 10 s idle timeout (oven-sh/bun#13392), over all three protocols; at
 * shutdown open streams end with UNAVAILABLE so clients reconnect elsewhere.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { createVhost, waitFor, type TestVhost } from "../support/services.ts";
import { hostManager, PROTOCOLS, startLogStack, texts, watch, type HostManager, type LogStack } from "./support.ts";

// Real broker on a possibly busy 2-core machine: generous, but not hiding hangs.
setDefaultTimeout(60_000);

let vhost: TestVhost;
let stack: LogStack;
let hm: HostManager;

beforeAll(async () => {
  vhost = await createVhost("mmlogquiet");
  stack = await startLogStack(vhost.url);
  hm = await hostManager(vhost.url);
});

afterAll(async () => {
  await hm?.close();
  await stack?.stop();
  await vhost?.remove();
});

test("streams survive 12 s without a line, over Connect, gRPC-Web and gRPC", async () => {
  const s = 12;
  const streams = PROTOCOLS.map((p) => watch(stack.client(p), s));
  await hm.line(s, "before the quiet");
  await waitFor(() => streams.every((w) => w.got.length === 1), 20_000, "first line");
  await Bun.sleep(12_000);
  await hm.line(s, "after the quiet");
  await waitFor(() => streams.every((w) => w.got.length === 2), 20_000, "line after the quiet");
  for (const w of streams) {
    expect(texts(w.got)).toEqual(["before the quiet", "after the quiet"]);
    w.stop();
  }
});

test("shutdown ends open streams with UNAVAILABLE and frees them", async () => {
  const s = 13;
  const streams = PROTOCOLS.map((p) => watch(stack.client(p), s));
  await waitFor(() => stack.hub.subscriberCount(s) === 3, 20_000, "subscribed");
  await stack.stop();
  const errors = await Promise.all(streams.map((w) => w.done));
  for (const err of errors) expect(ConnectError.from(err).code).toBe(Code.Unavailable);
  expect(stack.hub.subscriberCount()).toBe(0);
});
