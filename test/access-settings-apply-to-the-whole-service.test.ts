/**
 * The access settings on the whole service (startService), beyond the log
 * streams (test/logs/log-access-*):
 * - METRICS_PORT moves /metrics and /status to their own port and off the
 *   public one; /healthz and /readyz stay where the probes look; unset,
 *   /metrics is on HEALTH_CHECK_PORT as before.
 * - Protected mode covers SessionViewer and LogHistory too, on the HTTP
 *   port (Connect router) and on GRPC_PORT, refusing this machine's own
 *   non-loopback address and serving 127.0.0.1.
 * - CORS_ORIGINS: only a listed origin gets CORS headers.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { networkInterfaces } from "node:os";
import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { LogHistory, ReadDirection } from "../src/gen/manman/processor/v1/log_history_pb.ts";
import { SessionViewer } from "../src/gen/manman/processor/v1/sessions_pb.ts";
import { startProcessor, testWorld, type RunningProcessor } from "./support/processor.ts";
import { codeOf } from "./support/rpc-status.ts";

setDefaultTimeout(60_000);

const own = Object.values(networkInterfaces())
  .flat()
  .find((a) => a && !a.internal && a.family === "IPv4")?.address;

let world: Awaited<ReturnType<typeof testWorld>>;
let split: RunningProcessor;
let plain: RunningProcessor;

beforeAll(async () => {
  world = await testWorld("mmaccess");
  // split: no credentials (protected mode), metrics apart, one CORS origin.
  split = await startProcessor(world.vhost, world.db, { METRICS_PORT: "0", METRICS_HOST: "127.0.0.1", CORS_ORIGINS: "https://ui.example.com" });
  plain = await startProcessor(world.vhost, world.db, { LOG_ACCESS_TOKEN: "tok" });
});

afterAll(async () => {
  await split?.stop();
  await plain?.stop();
  await world?.remove();
});

describe("METRICS_PORT", () => {
  test("set: /metrics and /status answer there, and not on the public port; health stays public", async () => {
    const metricsUrl = (path: string) => `http://127.0.0.1:${split.service.metricsPort}${path}`;
    expect(split.service.metricsPort).toBeGreaterThan(0);
    expect(split.service.metricsPort).not.toBe(split.service.httpPort);
    const metrics = await fetch(metricsUrl("/metrics"));
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toContain("manman_event_messages_in_flight");
    expect((await fetch(metricsUrl("/status"))).status).toBe(200);
    expect((await fetch(split.url("/metrics"))).status).toBe(404);
    expect((await fetch(split.url("/status"))).status).toBe(404);
    expect((await fetch(split.url("/healthz"))).status).toBe(200);
    expect((await fetch(metricsUrl("/healthz"))).status).toBe(404);
  });

  test("unset: /metrics and /status are on HEALTH_CHECK_PORT as before", async () => {
    expect(plain.service.metricsPort).toBeUndefined();
    expect((await fetch(plain.url("/metrics"))).status).toBe(200);
    expect((await fetch(plain.url("/status"))).status).toBe(200);
  });
});

const viewerAt = (base: string) => createClient(SessionViewer, createConnectTransport({ baseUrl: base }));
const historyAt = (base: string, grpc = false) =>
  createClient(LogHistory, grpc ? createGrpcTransport({ baseUrl: base }) : createConnectTransport({ baseUrl: base }));
const page = { sessionId: 1n, direction: ReadDirection.FORWARD };

describe.skipIf(!own)("protected mode covers the viewer's RPCs", () => {
  test("SessionViewer: this machine's other address is refused, 127.0.0.1 served", async () => {
    expect(await codeOf(viewerAt(`http://${own}:${split.service.httpPort}`).listSessions({}))).toBe(Code.PermissionDenied);
    expect(await codeOf(viewerAt(`http://127.0.0.1:${split.service.httpPort}`).listSessions({}))).toBe("ok");
  });

  test("LogHistory on both ports: refused from the other address, served on loopback", async () => {
    expect(await codeOf(historyAt(`http://${own}:${split.service.httpPort}`).readSessionLogs(page))).toBe(Code.PermissionDenied);
    expect(await codeOf(historyAt(`http://${own}:${split.service.grpcPort}`, true).readSessionLogs(page))).toBe(Code.PermissionDenied);
    expect(await codeOf(historyAt(`http://127.0.0.1:${split.service.httpPort}`).readSessionLogs(page))).toBe("ok");
    expect(await codeOf(historyAt(`http://127.0.0.1:${split.service.grpcPort}`, true).sessionLogHistogram({ sessionId: 1n }))).toBe("ok");
  });

  test("with a token configured, the other address gets in with it", async () => {
    const transport = createConnectTransport({
      baseUrl: `http://${own}:${plain.service.httpPort}`,
      interceptors: [(next) => (req) => (req.header.set("authorization", "Bearer tok"), next(req))],
    });
    expect(await codeOf(createClient(SessionViewer, transport).listSessions({}))).toBe("ok");
  });
});

test("viewer queries run on the viewer's own pool, not the event pool", async () => {
  await viewerAt(`http://127.0.0.1:${split.service.httpPort}`).listSessions({});
  const rows = await world.sql<{ application_name: string }[]>`
    SELECT DISTINCT application_name FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'manman-processor%'`;
  expect(rows.map((r) => r.application_name).sort()).toEqual(["manman-processor", "manman-processor-viewer"]);
});

describe("CORS_ORIGINS", () => {
  const preflight = (p: RunningProcessor, origin: string) =>
    fetch(p.url("/manman.processor.v1.SessionViewer/ListSessions"), {
      method: "OPTIONS",
      headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "content-type,authorization" },
    });

  test("a listed origin may call, with Authorization; another origin gets no CORS headers", async () => {
    const listed = await preflight(split, "https://ui.example.com");
    expect(listed.headers.get("access-control-allow-origin")).toBe("https://ui.example.com");
    expect(listed.headers.get("access-control-allow-headers")?.toLowerCase()).toContain("authorization");
    const other = await preflight(split, "https://evil.example.com");
    expect(other.headers.get("access-control-allow-origin")).toBeNull();
  });

  test("unset: no CORS headers for anyone, on the preflight or the call", async () => {
    expect((await preflight(plain, "https://ui.example.com")).headers.get("access-control-allow-origin")).toBeNull();
    const call = await fetch(plain.url("/manman.processor.v1.SessionViewer/ListSessions"), {
      method: "POST",
      headers: { origin: "https://ui.example.com", "content-type": "application/json", authorization: "Bearer tok" },
      body: "{}",
    });
    expect(call.status).toBe(200);
    expect(call.headers.get("access-control-allow-origin")).toBeNull();
  });
});
