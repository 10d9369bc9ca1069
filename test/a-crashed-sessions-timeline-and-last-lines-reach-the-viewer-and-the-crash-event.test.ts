/**
 * Issue 14 item 8, end to end against the real broker and database: a
 * session's status moves land in processor_session_transitions in the
 * statement that makes them; SessionTimeline serves them on both ports
 * (Connect, gRPC-Web, native gRPC), token-checked and validated; the
 * crashed event (and the lost event of the stale sweep) carries the
 * session's last 20 lines cut at 500 bytes; and the viewer shows the
 * timeline above the log, each entry jumping the log to its moment.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { Code, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { chromium, type Browser, type Page } from "playwright-core";
import { SessionTimeline } from "../src/gen/manman/processor/v1/session_timeline_pb.ts";
import { BrokerPeer, insertSession, startProcessor, testWorld, waitFor, type RunningProcessor } from "./support/processor.ts";
import { backdateUpdatedAt } from "./support/manmanv2-schema.ts";
import { codeOf } from "./support/rpc-status.ts";

// A browser and a busy 2-core machine: a minute per step.
setDefaultTimeout(60_000);

const TOKEN = "timeline-token";
const BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"];
const SGC = 4100;

let world: Awaited<ReturnType<typeof testWorld>>;
let processor: RunningProcessor;
let peer: BrokerPeer;
let browser: Browser | undefined;
let published = 0;

beforeAll(async () => {
  world = await testWorld("timeline");
  // 10 s: sessions of the first test pass through starting well within it.
  processor = await startProcessor(world.vhost, world.db, { LOG_ACCESS_TOKEN: TOKEN, STALE_SESSION_THRESHOLD_SECONDS: "10" });
  peer = await BrokerPeer.connect(world.vhost.url);
});
afterAll(async () => {
  await browser?.close();
  await peer?.close();
  await processor?.stop();
  await world?.remove();
});

const send = (id: number, status: string, exit_code?: number) =>
  peer.publish(`status.session.${id}`, { session_id: id, sgc_id: 0, status, ...(exit_code === undefined ? {} : { exit_code }) });
/** Publishes log lines with the current time (the host's clock: this machine's); returns them. */
async function publishLines(id: number, lines: [string, string][]): Promise<{ timestamp: number; source: string; message: string }[]> {
  const out = [];
  for (const [source, message] of lines) {
    const line = { timestamp: Date.now(), source, message };
    await peer.publish(`logs.session.${id}`, { session_id: id, ...line });
    out.push(line);
    published++;
  }
  return out;
}
/** Until every published line is in this replica's log buffer (the event's log_tail reads it). */
const ingested = () =>
  waitFor(() => (processor.service.metrics.get("manman_log_lines_ingested_total", {}) ?? 0) >= published, 20_000, "lines ingested");
const rows = async (id: number) =>
  (await world.sql<{ from_status: string; to_status: string; exit_code: number | null; routing_key: string | null; reason: string; at: string }[]>`SELECT from_status, to_status, exit_code, routing_key, reason, floor(extract(epoch FROM at) * 1000)::bigint AS at
                   FROM processor_session_transitions WHERE session_id = ${id} ORDER BY at, id`).map((r) => ({ ...r, at: Number(r.at) }));
const eventOf = (id: number, status: string) =>
  peer.events(`manman.session.${status}`).find((e) => (e.body as { session_id: number }).session_id === id)?.body as Record<string, unknown> | undefined;
const bytes = (s: string) => new TextEncoder().encode(s).length;
const archived = (l: { timestamp: number; source: string; message: string }) => `[${new Date(l.timestamp).toISOString()}] [${l.source}] ${l.message}`;

const bearer: Interceptor = (next) => (req) => (req.header.set("authorization", `Bearer ${TOKEN}`), next(req));
function client(protocol: "connect" | "grpc-web" | "grpc", token = true) {
  const interceptors = token ? [bearer] : [];
  const baseUrl = protocol === "grpc" ? `http://127.0.0.1:${processor.service.grpcPort}` : processor.url("");
  const transport =
    protocol === "connect"
      ? createConnectTransport({ baseUrl, interceptors })
      : protocol === "grpc-web"
        ? createGrpcWebTransport({ baseUrl, interceptors })
        : createGrpcTransport({ baseUrl, interceptors });
  return createClient(SessionTimeline, transport);
}
let crashed: number;
let startedAt: number;

test("a crash: every move is in the timeline table and the RPC on both ports, and the crashed event carries the last 20 lines cut at 500 bytes", async () => {
  crashed = await insertSession(world.sql, SGC);
  await publishLines(crashed, Array.from({ length: 100 }, (_, i) => ["host", `before ${i}`] as [string, string]));
  await send(crashed, "starting");
  await waitFor(async () => (await rows(crashed)).length === 1, 20_000, "starting applied");
  startedAt = (await rows(crashed))[0]!.at;
  await publishLines(crashed, Array.from({ length: 100 }, (_, i) => ["stdout", `after-start ${i}`] as [string, string]));
  await send(crashed, "running");
  await send(crashed, "running"); // a repeat: not a move, no row
  const last = await publishLines(crashed, [
    ...Array.from({ length: 100 }, (_, i) => ["stdout", `running ${i}`] as [string, string]),
    ["stdout", "x".repeat(2000)],
    ["stderr", "€".repeat(400)],
    ["stderr", "Segmentation fault (core dumped)"],
  ]);
  await ingested();
  const before = Date.now();
  await send(crashed, "crashed", 139);
  const event = await waitFor(() => eventOf(crashed, "crashed"), 20_000, "the crashed event");

  // The event: the contract's fields as before, plus the newest 20 lines in the archive's format.
  expect(Object.keys(event)).toEqual(["session_id", "sgc_id", "status", "exit_code", "log_tail"]);
  expect(event).toMatchObject({ session_id: crashed, sgc_id: SGC, status: "crashed", exit_code: 139 });
  const tail = event.log_tail as string[];
  expect(tail).toHaveLength(20);
  expect(tail.slice(0, 17)).toEqual(last.slice(83, 100).map(archived));
  expect(tail[17]!.startsWith(`[${new Date(last[100]!.timestamp).toISOString()}] [stdout] xxx`)).toBe(true);
  expect(bytes(tail[17]!)).toBe(500);
  expect(bytes(tail[18]!)).toBeLessThanOrEqual(500);
  expect(tail[18]!.endsWith("€")).toBe(true); // cut between characters, never inside one
  expect(tail[19]).toBe(archived(last[102]!));

  // The table: one row per move, written with it.
  const key = `status.session.${crashed}`;
  const timeline = await rows(crashed);
  expect(timeline.map(({ at: _, ...r }) => r)).toEqual([
    { from_status: "pending", to_status: "starting", exit_code: null, routing_key: key, reason: "message" },
    { from_status: "starting", to_status: "running", exit_code: null, routing_key: key, reason: "message" },
    { from_status: "running", to_status: "crashed", exit_code: 139, routing_key: key, reason: "message" },
  ]);
  expect(timeline[2]!.at).toBeGreaterThanOrEqual(before - 1000); // the database's clock, this machine's

  // The RPC, the same answer on every protocol and both ports.
  for (const protocol of ["connect", "grpc-web", "grpc"] as const) {
    const res = await client(protocol).getSessionTimeline({ sessionId: BigInt(crashed) });
    const answered: unknown[] = res.transitions.map((t) => [Number(t.at), t.fromStatus, t.toStatus, t.exitCode, t.reason, t.routingKey]);
    expect(answered).toEqual(timeline.map((r) => [r.at, r.from_status, r.to_status, r.exit_code ?? undefined, r.reason, r.routing_key]));
    expect(await codeOf(client(protocol, false).getSessionTimeline({ sessionId: BigInt(crashed) }))).toBe(Code.Unauthenticated);
    expect(await codeOf(client(protocol).getSessionTimeline({ sessionId: 0n }))).toBe(Code.InvalidArgument);
    expect(await codeOf(client(protocol).getSessionTimeline({ sessionId: -5n }))).toBe(Code.InvalidArgument);
    expect((await client(protocol).getSessionTimeline({ sessionId: 999_999_999n })).transitions).toEqual([]);
  }
});

test("a session the stale sweep marks lost: its row says so and the lost event carries its last lines", async () => {
  const id = await insertSession(world.sql, SGC + 1, "starting");
  const lines = await publishLines(id, [
    ["host", "downloading addon 3/7"],
    ["stderr", "curl: (28) Operation timed out"],
  ]);
  await ingested();
  await backdateUpdatedAt(world.sql, "sessions", [id], 60);
  const event = await waitFor(() => eventOf(id, "lost"), 30_000, "the lost event");
  expect(event).toEqual({ session_id: id, sgc_id: SGC + 1, status: "lost", log_tail: lines.map(archived) });
  expect((await rows(id)).map(({ at: _, ...r }) => r)).toEqual([
    { from_status: "starting", to_status: "lost", exit_code: null, routing_key: null, reason: "stale_sweep" },
  ]);
  const res = await client("grpc").getSessionTimeline({ sessionId: BigInt(id) });
  expect(res.transitions.map((t) => [t.fromStatus, t.toStatus, t.reason, t.routingKey])).toEqual([["starting", "lost", "stale_sweep", ""]]);
});

test("the viewer shows the timeline above the log, and a click on an entry jumps the log to that moment", async () => {
  browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: BROWSER_ARGS });
  const context = await browser.newContext({ viewport: { width: 1280, height: 720 } });
  await context.addInitScript((token) => sessionStorage.setItem("manman.logAccessToken", token), TOKEN);
  const page: Page = await context.newPage();
  const pageErrors: string[] = [];
  page.on("pageerror", (e) => pageErrors.push(e.message));
  page.on("console", (m) => void (m.type() === "error" && pageErrors.push(m.text())));
  await page.goto(processor.url(`/sessions/${crashed}`));
  const entries = page.locator("#timeline:not([hidden]) button");
  await waitFor(async () => (await entries.count()) === 3, 20_000, "three timeline entries");
  const texts = await entries.allTextContents();
  expect(texts[0]).toContain("pending → starting");
  expect(texts[2]).toContain("running → crashed");
  expect(texts[2]).toContain("exit 139");
  // Above the log (and above the activity strip, when it shows).
  const y = (sel: string) => page.locator(sel).evaluate((el) => el.getBoundingClientRect().top);
  expect(await y("#timeline")).toBeLessThan(await y("#log"));
  expect(await page.locator("#timeline + #histogram, #timeline + #log").count()).toBe(1);

  // The page follows the end; "pending → starting" shows the first line logged after that moment on top.
  await page.locator(".row .msg", { hasText: "Segmentation fault" }).waitFor();
  const topRow = () =>
    page.evaluate(() => {
      const top = document.getElementById("log")!.getBoundingClientRect().top;
      const row = [...document.querySelectorAll<HTMLElement>(".row")].find((r) => r.getBoundingClientRect().top >= top - 1);
      return row?.querySelector(".msg")?.textContent ?? null;
    });
  expect(await topRow()).not.toBe("after-start 0");
  await entries.first().click();
  await waitFor(async () => (await topRow()) === "after-start 0", 15_000, "the jump to the start");
  expect(Number(await entries.first().getAttribute("data-ts"))).toBe(startedAt);
  await page.screenshot({ path: "/tmp/tl/viewer-timeline.png" });
  expect(pageErrors).toEqual([]);
});
