/**
 * Hostile streams, against the running service (a subprocess) with the
 * default caps (LOG_STREAMS_MAX 2,000, LOG_STREAMS_PER_CLIENT_MAX 500):
 * 10,000 streams for made-up sessions, bad tokens on every path, and
 * deadlines no timer can hold. After each, the service is ready, its RSS
 * stayed under RSS_BOUND_MB, and the legitimate streams (from 127.0.0.2)
 * still receive lines.
 *
 * RSS_BOUND_MB = 250: ~65 MB idle + 2,000 open streams at ~20 KB each
 * (docs/logs.md's memory bound) + ~1,000 sockets; no buffer is made for a
 * made-up session, so 10,000 of them cost no buffer memory.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import type { ClientHttp2Session, OutgoingHttpHeaders } from "node:http2";
import { AUTH, envelope, grpcHeaders, h2Call, h2From, http1From, startTarget, STREAM_PATH, streamRequest, waitFor, type Target } from "./support/hostile.ts";

setDefaultTimeout(90_000);
const RSS_BOUND_MB = 250;
const HISTORY_PATH = "/manman.processor.v1.LogHistory/ReadSessionLogs";
const LIST_PATH = "/manman.processor.v1.SessionViewer/ListSessions";
// The real token with more after it: a prefix match must not pass.
const TOKEN_LIKE = "hostile-suite-token-but-longer";
// Well before the 5 s body deadline: the answer did not wait for the body.
const FAST_MS = 4_000;

let target: Target;
beforeAll(async () => {
  target = await startTarget("mmhoststream");
  await target.healthy();
});
afterAll(async () => {
  await target?.stop();
});

type Outcome = "open" | "refused" | "reset" | "other";

/** `n` gRPC streams for made-up sessions over `conns` connections from `address`; settles once each is open (headers, no status) or ended. */
async function grpcFlood(n: number, conns: number, address: string, firstSession: number) {
  const sessions: ClientHttp2Session[] = Array.from({ length: conns }, () => h2From(target.grpcPort, address));
  const outcomes: Outcome[] = [];
  await Promise.all(
    Array.from({ length: n }, (_, i) =>
      new Promise<void>((settle) => {
        const req = sessions[i % conns].request(grpcHeaders());
        req.on("error", () => {});
        req.on("response", (h) => {
          if (h["grpc-status"] === undefined) setTimeout(() => (req.closed ? undefined : (outcomes.push("open"), settle())), 500);
        });
        req.on("trailers", (t) => void (outcomes.push(t["grpc-status"] === "8" ? "refused" : "other"), settle()));
        req.on("close", () => {
          if (req.rstCode === 7) outcomes.push("reset"); // REFUSED_STREAM: past maxConcurrentStreams
          settle();
        });
        req.end(envelope(streamRequest(firstSession + i)));
      }),
    ),
  );
  const count = (o: Outcome) => outcomes.filter((x) => x === o).length;
  return { open: count("open"), refused: count("refused"), reset: count("reset"), other: count("other"), close: () => sessions.forEach((s) => s.destroy()) };
}

/**
 * `n` Connect streams over HTTP/1.1 (a connection each) from `address`;
 * settles once each is answered with its error, or open: an open stream of
 * a session with no lines sends nothing at all (its headers go out with its
 * first line), so open = 5 s without an answer (refusals take milliseconds).
 */
async function connectFlood(n: number, address: string, firstSession: number) {
  const sockets = await Promise.all(Array.from({ length: n }, () => http1From(target.httpPort, address)));
  const got = await Promise.all(
    sockets.map(
      (s, i) =>
        new Promise<string>((settle) => {
          let text = "";
          s.on("data", (d: Buffer) => {
            text += d.toString("latin1");
            if (text.includes('"error"')) settle("refused");
          });
          s.on("close", () => settle("closed"));
          setTimeout(() => settle("open"), 5_000);
          const body = envelope(new TextEncoder().encode(JSON.stringify({ sessionId: String(firstSession + i) })));
          s.write(`POST ${STREAM_PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/connect+json\r\nAuthorization: ${AUTH}\r\nContent-Length: ${body.length}\r\n\r\n`);
          s.write(body);
        }),
    ),
  );
  return { open: got.filter((g) => g === "open").length, refused: got.filter((g) => g === "refused").length, close: () => sockets.forEach((s) => s.destroy()) };
}

test("10,000 streams for made-up sessions: each address gets 500, the process 2,000, the rest RESOURCE_EXHAUSTED; no buffer is made", async () => {
  const peak = target.watchRss();
  const refusedBefore = await target.metric("manman_log_streams_refused_total", { reason: "per_client" });
  // 9,000 gRPC streams over 16 connections (within each one's 600 concurrent streams) and 1,000 Connect streams.
  const [grpc, connect] = await Promise.all([grpcFlood(9_000, 16, "127.0.0.1", 1_000_000), connectFlood(1_000, "127.0.0.3", 2_000_000)]);
  expect([grpc.open, connect.open, grpc.other, grpc.reset]).toEqual([500, 500, 0, 0]);
  expect(grpc.refused).toBe(8_500);
  expect(connect.refused).toBe(500);
  expect(await target.metric("manman_log_streams_refused_total", { reason: "per_client" })).toBeGreaterThanOrEqual(refusedBefore + 1_000);
  expect(await target.metric("manman_log_streams_waiting")).toBe(1_000);
  expect(await target.metric("manman_log_buffer_sessions")).toBe(1); // the legitimate session's
  await target.healthy();
  // Two more addresses fill the process: 2,000 streams with the two legitimate ones.
  const [third, fourth] = await Promise.all([grpcFlood(600, 2, "127.0.0.4", 3_000_000), grpcFlood(600, 2, "127.0.0.5", 4_000_000)]);
  expect(third.open + fourth.open).toBe(2_000 - 1_000 - 2);
  expect(await target.metric("manman_log_streams_refused_total", { reason: "total" })).toBeGreaterThan(0);
  const newcomer = await h2Call(h2From(target.grpcPort, "127.0.0.6"), grpcHeaders(), envelope(streamRequest(5)), 10_000);
  expect([newcomer.grpcStatus, newcomer.grpcMessage]).toEqual(["8", expect.stringContaining("LOG_STREAMS_MAX")]);
  // Streams that were already open keep getting lines.
  await target.healthy();
  for (const f of [grpc, connect, third, fourth]) f.close();
  await waitFor(async () => (await target.metric("manman_log_streams_open")) === 2, 20_000, "the flood's slots to come back");
  const later = await grpcFlood(1, 1, "127.0.0.6", 6_000_000);
  expect(later.open).toBe(1);
  later.close();
  expect(peak()).toBeLessThan(RSS_BOUND_MB);
  await target.healthy();
});

test("a connection that ignores MAX_CONCURRENT_STREAMS (600) gets REFUSED_STREAM, then is closed (ENHANCE_YOUR_CALM)", async () => {
  const peak = target.watchRss();
  const flood = await grpcFlood(2_000, 1, "127.0.0.7", 7_000_000);
  expect(flood.reset).toBeGreaterThan(0);
  expect(flood.open).toBe(0); // the whole connection went, the streams it had opened with it
  flood.close();
  await waitFor(async () => (await target.metric("manman_log_streams_open")) === 2, 20_000, "its slots to come back");
  expect(peak()).toBeLessThan(RSS_BOUND_MB);
  await target.healthy();
});

test("bad tokens are refused with UNAUTHENTICATED on every path, from the headers alone: a body that never comes is not waited for", async () => {
  const bad = ["", "Bearer", "Bearer wrong-token", "Basic dXNlcjpwYXNz", `Bearer ${"x".repeat(15_000)}`, "Bearer aaa.bbb.ccc", `Bearer ${TOKEN_LIKE}`];
  const results: string[] = [];
  const conn = h2From(target.grpcPort);
  for (const auth of bad) {
    const label = auth.slice(0, 20);
    // gRPC fast path and router, each with a body that stalls after one byte.
    for (const path of [STREAM_PATH, HISTORY_PATH]) {
      const r = await h2Call(conn, grpcHeaders({ authorization: auth }, path), (req) => void req.write(new Uint8Array([0])), 10_000);
      results.push(`grpc ${path} "${label}": ${r.grpcStatus} ${r.ms < FAST_MS ? "fast" : `${r.ms} ms`}`);
    }
    // Connect fast path and router over HTTP/1.1, the body also stalled.
    for (const [path, type] of [[STREAM_PATH, "application/connect+proto"], [LIST_PATH, "application/proto"]]) {
      const s = await http1From(target.httpPort);
      const t0 = Date.now();
      const reply = await new Promise<string>((done) => {
        let text = "";
        s.on("data", (d: Buffer) => (text += d.toString("latin1")));
        s.on("close", () => done(text));
        s.on("error", () => {});
        s.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: ${type}\r\nConnect-Protocol-Version: 1\r\n${auth ? `Authorization: ${auth}\r\n` : ""}Content-Length: 100\r\n\r\nx`);
        setTimeout(() => s.destroy(), 10_000);
      });
      const code = /"code":"([a-z_]+)"/.exec(reply)?.[1] ?? reply.split("\r\n")[0];
      results.push(`connect ${path} "${label}": ${code} ${Date.now() - t0 < FAST_MS ? "fast" : `${Date.now() - t0} ms`}`);
    }
  }
  conn.destroy();
  expect(results.filter((r) => !/: (16|unauthenticated) fast$/.test(r))).toEqual([]);
  // Headers past the 16 KiB limits are refused by the protocol layer, without a crash.
  const huge = `Bearer ${"y".repeat(20_000)}`;
  const big = await h2Call(h2From(target.grpcPort), grpcHeaders({ authorization: huge }), envelope(streamRequest(1)), 10_000);
  expect(big.grpcStatus === undefined && big.rstCode !== undefined).toBe(true);
  const big1 = await fetch(`http://127.0.0.1:${target.httpPort}${STREAM_PATH}`, { method: "POST", headers: { authorization: huge, "content-type": "application/connect+proto" }, body: envelope(streamRequest(1)) });
  expect(big1.status).toBe(431);
  await target.healthy();
});

test("deadlines past 2^31-1 ms are clamped on every path: the stream stays open and gets lines; a 1 ms deadline ends it at once", async () => {
  const session = 777;
  const huge = { grpc: "99999999H", connect: "9999999999" };
  const conn = h2From(target.grpcPort);
  const texts: Record<string, () => string> = {};
  const open = (name: string, headers: OutgoingHttpHeaders, body: Uint8Array) => {
    const req = conn.request(headers);
    let text = "";
    req.on("data", (d: Buffer) => (text += d.toString("latin1")));
    req.on("trailers", (t) => (text += ` [status ${t["grpc-status"]}]`));
    req.on("error", () => {});
    req.end(body);
    texts[name] = () => text;
  };
  open("gRPC", grpcHeaders({ "grpc-timeout": huge.grpc }), envelope(streamRequest(session)));
  open("gRPC+JSON (router)", grpcHeaders({ "grpc-timeout": huge.grpc, "content-type": "application/grpc+json" }), envelope(new TextEncoder().encode(`{"sessionId":"${session}"}`)));
  for (const [name, type, header] of [["Connect", "application/connect+proto", `Connect-Timeout-Ms: ${huge.connect}`], ["gRPC-Web", "application/grpc-web+proto", `Grpc-Timeout: ${huge.grpc}`]]) {
    const s = await http1From(target.httpPort);
    let text = "";
    s.on("data", (d: Buffer) => (text += d.toString("latin1")));
    const body = envelope(streamRequest(session));
    s.write(`POST ${STREAM_PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: ${type}\r\n${header}\r\nAuthorization: ${AUTH}\r\nContent-Length: ${body.length}\r\n\r\n`);
    s.write(body);
    texts[name] = () => text;
  }
  await Bun.sleep(1_500);
  await target.hm.line(session, "still here after the huge deadline");
  await waitFor(() => Object.values(texts).every((t) => t().includes("still here")), 20_000, "every stream to get the line");
  expect(Object.entries(texts).filter(([, t]) => t().includes("[status") || t().includes("deadline_exceeded")).map(([n]) => n)).toEqual([]);
  const quick = await h2Call(conn, grpcHeaders({ "grpc-timeout": "1m" }), envelope(streamRequest(session)), 10_000);
  expect([quick.grpcStatus, quick.ms < 3_000]).toEqual(["4", true]);
  conn.destroy();
  await target.healthy();
});
