/**
 * Slowloris clients, against the running service (a subprocess): HTTP/1.1
 * connections that send their headers a byte a second, and HTTP/2
 * connections that send nothing, or a preface and then a HEADERS frame a
 * byte a second. Each is closed within seconds (Bun's ~10 s for HTTP/1.1,
 * FIRST_REQUEST_MS = 10 s for HTTP/2), the service stays ready, its RSS
 * under RSS_BOUND_MB, and the legitimate streams keep receiving lines.
 *
 * RSS_BOUND_MB = 200: ~65 MB idle; 500 half-open connections cost a few
 * KB each.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import type { Socket } from "node:net";
import { h2From, http1From, startTarget, type Target } from "./support/hostile.ts";

setDefaultTimeout(90_000);
const RSS_BOUND_MB = 200;

let target: Target;
beforeAll(async () => {
  target = await startTarget("mmhostslow");
  await target.healthy();
});
afterAll(async () => {
  await target?.stop();
});

/** Writes `first`, then one byte of `drip` a second until the server closes; resolves with ms until the close. */
function slowly(s: Socket, first: Uint8Array | string, drip: string, giveUpMs = 40_000): Promise<number> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    let i = 0;
    s.on("error", () => {});
    s.on("data", () => {}); // read, or the server's FIN is never seen
    const timer = setInterval(() => drip && s.writable && s.write(drip[i++ % drip.length]), 1000);
    const stop = setTimeout(() => s.destroy(), giveUpMs);
    s.once("close", () => (clearInterval(timer), clearTimeout(stop), resolve(Date.now() - t0)));
    if (first.length) s.write(first);
  });
}

const PREFACE = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
// An empty SETTINGS frame, then the header of a 100-byte HEADERS frame (END_HEADERS) on stream 1 whose payload never completes.
const H2_START = new Uint8Array([...new TextEncoder().encode(PREFACE), 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 100, 1, 4, 0, 0, 0, 1]);

test("HTTP/1.1 and HTTP/2 connections that send a request a byte a second, or nothing, are closed within seconds", async () => {
  const peak = target.watchRss();
  const http1 = Array.from({ length: 300 }, async () => slowly(await http1From(target.httpPort), "POST /manman.v1.LogProcessor/StreamSessionLogs HTTP/1.1\r\nHost: x\r\n", "X-Slow: aaaaaaaa\r\n"));
  const silent = Array.from({ length: 100 }, async () => slowly(await http1From(target.grpcPort), "", "", 40_000));
  const h2 = Array.from({ length: 100 }, async () => slowly(await http1From(target.grpcPort), H2_START, "\x00"));
  // While they hang on, the legitimate streams go on.
  await Bun.sleep(3_000);
  await target.healthy();
  const [a, b, c] = await Promise.all([Promise.all(http1), Promise.all(silent), Promise.all(h2)]);
  expect(Math.max(...a)).toBeLessThan(20_000);
  // FIRST_REQUEST_MS (10 s), then the GOAWAY's grace (5 s) at most.
  expect(Math.max(...b, ...c)).toBeLessThan(20_000);
  expect(Math.min(...b, ...c)).toBeGreaterThanOrEqual(9_000);
  expect(peak()).toBeLessThan(RSS_BOUND_MB);
  await target.healthy();
});

test("the gRPC port advertises its limits: 600 concurrent streams per connection, 16 KiB of headers", async () => {
  const conn = h2From(target.grpcPort);
  const settings = await new Promise<{ maxConcurrentStreams?: number; maxHeaderListSize?: number }>((r) => conn.once("remoteSettings", r));
  conn.destroy();
  expect([settings.maxConcurrentStreams, settings.maxHeaderListSize]).toEqual([600, 16 * 1024]);
});
