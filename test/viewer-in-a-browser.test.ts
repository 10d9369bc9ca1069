/**
 * The log viewer in a real Chromium against the real service and broker:
 * the session list, live lines in order, stderr marked, ANSI colours, markup
 * kept as text, filter and search, follow, copy/download, and a service
 * restart the page rides through without duplicates.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { mkdir, readFile } from "node:fs/promises";
import { chromium, type Browser, type Page } from "playwright-core";
import { BrokerPeer, insertSession, startProcessor, testWorld, waitFor, type RunningProcessor } from "./support/processor.ts";

// A browser, a service restart and a busy 2-core machine: a minute per step.
setDefaultTimeout(60_000);

const OUTPUT = new URL("../test-output/", import.meta.url);
const BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"];

let world: Awaited<ReturnType<typeof testWorld>>;
let processor: RunningProcessor;
let peer: BrokerPeer;
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];

beforeAll(async () => {
  world = await testWorld("viewer");
  processor = await startProcessor(world.vhost, world.db);
  peer = await BrokerPeer.connect(world.vhost.url);
  browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: BROWSER_ARGS });
  const context = await browser.newContext({ viewport: { width: 1280, height: 720 }, timezoneId: "Europe/Berlin", acceptDownloads: true });
  await context.grantPermissions(["clipboard-read", "clipboard-write"]);
  page = await context.newPage();
  page.on("pageerror", (e) => pageErrors.push(e.message));
  page.on("console", (m) => void (m.type() === "error" && pageErrors.push(m.text())));
  await mkdir(OUTPUT, { recursive: true });
});
afterAll(async () => {
  await browser?.close();
  await peer?.close();
  await processor?.stop();
  await world?.remove();
});

let sessionId: number;
let published = 0;
const logLine = (source: string, message: string) => {
  published++;
  return peer.publish(`logs.session.${sessionId}`, { session_id: sessionId, timestamp: Date.now(), source, message });
};
/** Every line the page keeps under the current filter, as downloaded. */
async function downloaded(): Promise<string[]> {
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#download")]);
  const text = await readFile((await download.path())!, "utf8");
  return text.split("\n").filter((l) => l.length > 0);
}
const messages = (lines: string[]) => lines.map((l) => l.replace(/^\S+ \S+ \S+\s+/, ""));

test("pages and assets carry content types, caching and a strict CSP", async () => {
  const res = await fetch(processor.url("/"));
  expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
  expect(res.headers.get("cache-control")).toBe("no-cache");
  const csp = res.headers.get("content-security-policy")!;
  expect(csp).toContain("default-src 'none'");
  expect(csp).toContain("script-src 'self'");
  expect(csp).not.toContain("unsafe-inline");
  const html = await res.text();
  expect(html).not.toMatch(/<script>|<script [^>]*>[^<]|style=/);
  const again = await fetch(processor.url("/"), { headers: { "If-None-Match": res.headers.get("etag")! } });
  expect(again.status).toBe(304);
  const js = html.match(/src="(\/assets\/viewer-[0-9a-f]+\.js)"/)![1]!;
  const css = html.match(/href="(\/assets\/viewer-[0-9a-f]+\.css)"/)![1]!;
  const jsRes = await fetch(processor.url(js));
  expect(jsRes.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
  expect(jsRes.headers.get("cache-control")).toContain("immutable");
  expect((await fetch(processor.url(css))).headers.get("content-type")).toBe("text/css; charset=utf-8");
  expect((await fetch(processor.url("/assets/viewer-0000.js"))).status).toBe(404);
  expect((await fetch(processor.url("/sessions/abc"))).status).toBe(404);
});

test("the session list shows inserted sessions, active ones first, with live status", async () => {
  const ended = await insertSession(world.sql, 7, "stopped");
  const running = await insertSession(world.sql, 8, "running");
  sessionId = await insertSession(world.sql, 9, "starting");
  await page.goto(processor.url("/"));
  const row = (id: number) => page.locator(`#sessions tr[data-session-id="${id}"]`);
  await row(ended).waitFor();
  const order = await page.locator("#sessions tbody tr").evaluateAll((trs) => trs.map((tr) => Number((tr as HTMLElement).dataset.sessionId)));
  expect(order).toEqual([sessionId, running, ended]);
  expect(await row(running).locator("td").nth(1).textContent()).toBe("8");
  expect(await row(running).locator(".status").textContent()).toBe("running");
  await world.sql`UPDATE sessions SET status = 'stopping' WHERE session_id = ${running}`;
  await waitFor(async () => (await row(running).locator(".status").textContent()) === "stopping", 15_000, "status refresh");
  await page.screenshot({ path: new URL("viewer-sessions.png", OUTPUT).pathname });
  expect(await row(sessionId).locator("a").getAttribute("href")).toBe(`/sessions/${sessionId}`);
});

test("published lines appear in order; stderr is marked, ANSI coloured, markup stays text", async () => {
  await page.goto(processor.url(`/sessions/${sessionId}`));
  await page.locator('#conn[data-state="live"]').waitFor();
  const story: [string, string][] = [
    ["host", "pulling image ghcr.io/manman/valheim:0.219 on host alpha"],
    ["host", "container started"],
    ["stdout", "\x1b[36m[Server]\x1b[0m Loading world \x1b[1mDedicated\x1b[0m (seed \x1b[38;5;208mHHcLC5acQt\x1b[0m)"],
    ["stdout", "\x1b[32mServer\x1b[0m started on port \x1b[1;33m27015\x1b[0m"],
    ["stderr", "WARN: config file missing, using defaults"],
    ["stdout", "\x1b[33mPlayer\x1b[0m Alice joined from 203.0.113.7"],
    ["stdout", '<script>window.injected = true</script><img src=x onerror="window.injected=true">'],
    ["stdout", "\x1b[33mPlayer\x1b[0m Bob joined from 198.51.100.23"],
    ["stderr", "\x1b[31mERROR\x1b[0m Zone 12,-4 failed to load: \x1b[7mtimeout\x1b[27m after 5000 ms"],
    ["stdout", "\x1b[38;2;120;200;255mDay 2\x1b[0m begins; saving world"],
  ];
  for (const [source, message] of story) await logLine(source, message);
  for (let i = 1; i <= 20; i++) await logLine("stdout", `tick ${i}`);
  await page.locator(".row .msg", { hasText: "tick 20" }).waitFor();

  const all = messages(await downloaded());
  expect(all[0]).toBe("pulling image ghcr.io/manman/valheim:0.219 on host alpha");
  expect(all[3]).toBe("Server started on port 27015");
  expect(all.slice(story.length)).toEqual(Array.from({ length: 20 }, (_, i) => `tick ${i + 1}`));

  const stderr = page.locator(".row.src-stderr");
  expect(await stderr.count()).toBe(2);
  expect(await stderr.first().locator(".src").textContent()).toBe("stderr");
  expect(await stderr.first().evaluate((el) => getComputedStyle(el).backgroundColor)).not.toBe(
    await page.locator(".row.src-stdout").first().evaluate((el) => getComputedStyle(el).backgroundColor),
  );
  const green = page.locator(".row .msg span.fg-2", { hasText: "Server" });
  expect(await green.evaluate((el) => getComputedStyle(el).color)).toBe("rgb(63, 185, 80)");
  expect(await page.locator(".row .msg span.b.fg-3").textContent()).toBe("27015");
  expect(await page.locator(".row .msg span", { hasText: "HHcLC5acQt" }).evaluate((el) => el.style.color)).toBe("rgb(255, 135, 0)");

  const scriptRow = page.locator(".row .msg", { hasText: "<script>" });
  expect(await scriptRow.textContent()).toContain('<script>window.injected = true</script><img src=x onerror="window.injected=true">');
  expect(await page.locator(".rows script, .rows img").count()).toBe(0);
  expect(await page.evaluate(() => (window as unknown as { injected?: boolean }).injected)).toBeUndefined();
  // Local time in the browser's zone (Europe/Berlin is UTC+1 in November).
  const ts = await page.locator(".row .ts").first().textContent();
  expect(ts).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$/);
});

test("source filter and search narrow the view and highlight matches", async () => {
  await page.uncheck("#show-stderr");
  await waitFor(async () => (await page.locator(".row.src-stderr").count()) === 0);
  await page.uncheck("#show-host");
  await waitFor(async () => (await page.locator(".row.src-host").count()) === 0);
  expect(await page.locator(".row.src-stdout").count()).toBeGreaterThan(0);
  await page.check("#show-stderr");
  await page.check("#show-host");
  await page.fill("#search", "TICK 1");
  await waitFor(async () => (await page.locator(".row").count()) === 11, 10_000, "search applied");
  expect(await page.locator(".row mark").first().textContent()).toBe("tick 1");
  const matching = ["tick 1", ...Array.from({ length: 10 }, (_, i) => `tick ${i + 10}`)];
  expect(messages(await downloaded())).toEqual(matching);
  await page.click("#copy");
  await page.locator("#copy", { hasText: "Copied" }).waitFor();
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  expect(messages(copied.split("\n").filter((l) => l))).toEqual(matching);
  // Highlights among all lines, colours kept inside and around the match.
  await page.uncheck("#only-matches");
  await page.fill("#search", "joined");
  await waitFor(async () => (await page.locator(".row mark").count()) === 2, 10_000, "highlights in context");
  expect(await page.locator(".row").count()).toBeGreaterThan(20);
  await page.locator("#log").evaluate((el) => el.scrollTo({ top: 0 }));
  // The README's picture: docs/viewer.png is a copy of this one.
  await page.screenshot({ path: new URL("viewer.png", OUTPUT).pathname });
  await page.fill("#search", "");
  await page.check("#only-matches");
  await waitFor(async () => (await page.locator(".row mark").count()) === 0);
  if (await page.locator("#follow").isVisible()) await page.click("#follow");
});

test("follow pauses when scrolled up and resumes with the button", async () => {
  for (let i = 21; i <= 200; i++) await logLine("stdout", `tick ${i}`);
  await page.locator(".row .msg", { hasText: "tick 200" }).waitFor();
  expect(await page.locator("#follow").isHidden()).toBe(true);
  await page.locator("#log").evaluate((el) => el.scrollTo({ top: 0 }));
  await page.locator("#follow").waitFor({ state: "visible" });
  for (let i = 201; i <= 220; i++) await logLine("stdout", `tick ${i}`);
  await waitFor(async () => (await page.locator("#follow").textContent())?.includes("20 new"), 10_000, "unseen count");
  expect(await page.locator("#log").evaluate((el) => el.scrollTop)).toBe(0);
  await page.click("#follow");
  await page.locator(".row .msg", { hasText: "tick 220" }).waitFor();
  expect(await page.locator("#follow").isHidden()).toBe(true);
  const atBottom = await page.locator("#log").evaluate((el) => el.scrollTop + el.clientHeight >= el.scrollHeight - 4);
  expect(atBottom).toBe(true);
  await page.screenshot({ path: new URL("viewer-follow.png", OUTPUT).pathname });
});

test("after a service restart the page reconnects and continues without duplicates", async () => {
  const port = processor.service.httpPort;
  await processor.stop();
  // Down long enough for the page to fail a status lookup as well as the stream.
  await page.locator('#conn[data-state="retrying"]', { hasText: "can't reach" }).waitFor({ timeout: 30_000 });
  processor = await startProcessor(world.vhost, world.db, { HEALTH_CHECK_PORT: String(port) });
  await page.locator('#conn[data-state="live"]').waitFor({ timeout: 30_000 });
  for (let i = 221; i <= 240; i++) await logLine("stdout", `tick ${i}`);
  await page.locator(".row .msg", { hasText: "tick 240" }).waitFor();
  const lines = messages(await downloaded()).filter((m) => m.startsWith("tick "));
  expect(lines).toEqual(Array.from({ length: 240 }, (_, i) => `tick ${i + 1}`));
  expect(await page.locator(".row.src-notice", { hasText: "restarted" }).count()).toBe(1);
  await page.screenshot({ path: new URL("viewer-after-restart.png", OUTPUT).pathname });
  expect(pageErrors.filter((e) => !/Failed to load resource|ERR_CONNECTION_REFUSED|net::/.test(e))).toEqual([]);
});

test("a session id the service refuses shows an error instead of retrying forever", async () => {
  const tab = await browser.newPage();
  await tab.goto(processor.url("/sessions/99999999999999999"));
  await tab.locator('#conn[data-state="error"]', { hasText: "session_id" }).waitFor();
  await tab.close();
});

test("with a log access token set, the page asks for it once and keeps it for the tab", async () => {
  const port = processor.service.httpPort;
  await processor.stop();
  processor = await startProcessor(world.vhost, world.db, { HEALTH_CHECK_PORT: String(port), LOG_ACCESS_TOKEN: "s3cret-token" });
  const tab = await browser.newPage();
  await tab.goto(processor.url("/"));
  await tab.locator("#token-dialog[open]").waitFor();
  await tab.fill("#token-input", "wrong");
  await tab.press("#token-input", "Enter");
  await tab.locator("#token-reason", { hasText: "refused" }).waitFor();
  await tab.fill("#token-input", "s3cret-token");
  await tab.press("#token-input", "Enter");
  await tab.locator(`#sessions tr[data-session-id="${sessionId}"]`).waitFor();
  await tab.goto(processor.url(`/sessions/${sessionId}`));
  await tab.locator('#conn[data-state="live"]').waitFor();
  expect(await tab.locator("#token-dialog[open]").count()).toBe(0);
  await logLine("stdout", "behind a token");
  await tab.locator(".row .msg", { hasText: "behind a token" }).waitFor();
  await tab.close();
});
