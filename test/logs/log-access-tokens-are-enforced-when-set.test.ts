/**
 * With LOG_ACCESS_TOKEN set, every LogProcessor call needs
 * `Authorization: Bearer <token>` (any of the listed tokens), over all three
 * protocols, or fails with UNAUTHENTICATED; health routes stay open. Unset,
 * the service is in protected mode (loopback clients only, as these tests
 * are; remote clients: log-access-protected-mode-refuses-remote-clients)
 * and says so at start. (That one also echoes lines: DEBUG_LOG_OUTPUT.)
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { Code } from "@connectrpc/connect";
import { createVhost, waitFor, type TestVhost } from "../support/services.ts";
import { hostManager, PROTOCOLS, startLogStack, take, type HostManager, type LogStack } from "./support.ts";
import { codeOf } from "../support/rpc-status.ts";

// Real broker on a possibly busy 2-core machine: generous, but not hiding hangs.
setDefaultTimeout(60_000);

let vhost: TestVhost;
let guarded: LogStack;
let open: LogStack;
let withCors: LogStack;
let hm: HostManager;

beforeAll(async () => {
  vhost = await createVhost("mmlogauth");
  guarded = await startLogStack(vhost.url, { LOG_ACCESS_TOKEN: "old-token, new-token" });
  open = await startLogStack(vhost.url, { DEBUG_LOG_OUTPUT: "true" });
  withCors = await startLogStack(vhost.url, { LOG_ACCESS_TOKEN: "t", CORS_ORIGINS: "http://viewer.example" });
  hm = await hostManager(vhost.url);
  await hm.line(1, "secret line");
  await waitFor(() => guarded.ingest.ingested() >= 1 && open.ingest.ingested() >= 1, 20_000, "ingested");
});

afterAll(async () => {
  await hm?.close();
  await guarded?.stop();
  await open?.stop();
  await withCors?.stop();
  await vhost?.remove();
});

describe.each(PROTOCOLS)("over %s", (protocol) => {
  test("no token: UNAUTHENTICATED", async () => {
    expect(await codeOf(take(guarded.client(protocol), 1, 1))).toBe(Code.Unauthenticated);
  });

  test("a wrong token: UNAUTHENTICATED", async () => {
    expect(await codeOf(take(guarded.client(protocol, "guess"), 1, 1))).toBe(Code.Unauthenticated);
  });

  test("either configured token: the stream works", async () => {
    expect((await take(guarded.client(protocol, "new-token"), 1, 1))[0].message).toBe("secret line");
    expect((await take(guarded.client(protocol, "old-token"), 1, 1))[0].message).toBe("secret line");
  });
});

test("health routes stay open when tokens are set", async () => {
  const res = await fetch(`http://127.0.0.1:${guarded.httpPort}/healthz`);
  expect(res.status).toBe(200);
});

test("without CORS_ORIGINS a browser preflight gets no CORS headers (the viewer is same-origin)", async () => {
  const res = await fetch(`http://127.0.0.1:${guarded.httpPort}/manman.v1.LogProcessor/StreamSessionLogs`, {
    method: "OPTIONS",
    headers: { origin: "http://viewer.example", "access-control-request-method": "POST", "access-control-request-headers": "authorization,content-type" },
  });
  expect(res.headers.get("access-control-allow-origin")).toBeNull();
  expect(res.headers.get("access-control-allow-headers")).toBeNull();
});

test("a browser preflight from a CORS_ORIGINS origin may send Authorization", async () => {
  const res = await fetch(`http://127.0.0.1:${withCors.httpPort}/manman.v1.LogProcessor/StreamSessionLogs`, {
    method: "OPTIONS",
    headers: { origin: "http://viewer.example", "access-control-request-method": "POST", "access-control-request-headers": "authorization,content-type,connect-protocol-version" },
  });
  expect(res.status).toBeLessThan(300);
  expect(res.headers.get("access-control-allow-origin")).toBe("http://viewer.example");
  expect(res.headers.get("access-control-allow-headers")?.toLowerCase()).toContain("authorization");
  expect(res.headers.get("access-control-allow-headers")?.toLowerCase()).toContain("connect-protocol-version");
});

test("without credentials the service is in protected mode, says so once at start, and serves this machine", async () => {
  for (const protocol of PROTOCOLS) expect((await take(open.client(protocol), 1, 1))[0].message).toBe("secret line");
  const modeLines = (s: LogStack) => s.logs.filter((l) => l.component === "log_access" && String(l.msg).startsWith("log access:"));
  expect(modeLines(open).map((l) => l.mode)).toEqual(["protected"]);
  expect(String(modeLines(open)[0]!.msg)).toContain("only clients on this machine");
  expect(modeLines(guarded).map((l) => l.mode)).toEqual(["credentials"]);
});

test("DEBUG_LOG_OUTPUT=true echoes every line to the log; unset, it does not", () => {
  expect(open.logs.some((l) => l.msg === "session log line" && l.message === "secret line" && l.session_id === 1 && l.sequence_number === 1)).toBe(true);
  expect(guarded.logs.some((l) => l.msg === "session log line")).toBe(false);
});
