import { expect, test } from "bun:test";
import { createHttpApp } from "../http/app.ts";
import { silentLogger } from "../log.ts";
import { createLogHub } from "../logs/hub.ts";
import { createAccessCheck } from "./access.ts";
import { mountRpc } from "./fetch.ts";
import { createLogProcessor } from "./log-processor.ts";

function app() {
  const hub = createLogHub({ maxLines: 10, ttlMs: 60_000, maxBytes: 1 << 20, maxPendingBytes: 1 << 20 });
  const access = createAccessCheck({ access: "open" });
  const rpc = createLogProcessor({ hub, access, logger: silentLogger });
  const a = createHttpApp([]);
  const ac = new AbortController();
  mountRpc(a, { routes: rpc.routes, logStreams: rpc.streams, signal: ac.signal, access });
  return { a, hub, stop: () => ac.abort() };
}

const streamRequest = (signal: AbortSignal) => {
  const json = new TextEncoder().encode(JSON.stringify({ sessionId: "7" }));
  const body = new Uint8Array(5 + json.length);
  new DataView(body.buffer).setUint32(1, json.length);
  body.set(json, 5);
  return new Request("http://x/manman.v1.LogProcessor/StreamSessionLogs", {
    method: "POST",
    headers: { "content-type": "application/connect+json", "connect-protocol-version": "1" },
    body,
    signal,
  });
};

test("a log stream asks the runtime to keep its connection open (Bun's idle timeout)", async () => {
  const { a, hub, stop } = app();
  let kept = 0;
  const ac = new AbortController();
  const res = await a.fetch(streamRequest(ac.signal), { keepOpen: () => void kept++ });
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toBe("application/connect+json");
  expect(kept).toBe(1);
  expect(hub.subscriberCount(7)).toBe(1);
  await res.body?.cancel();
  expect(hub.subscriberCount(7)).toBe(0);
  stop();
});

test("health routes are not kept open", async () => {
  const { a, stop } = app();
  let kept = 0;
  const res = await a.fetch(new Request("http://x/healthz"), { keepOpen: () => void kept++ });
  expect(res.status).toBe(200);
  expect(kept).toBe(0);
  stop();
});
