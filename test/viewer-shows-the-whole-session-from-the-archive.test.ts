/**
 * The viewer's history in a real Chromium against the real service, broker
 * and database, with archive objects and rows written here (formats of
 * src/logs/archive/, a directory store the service reads through
 * LOG_ARCHIVE_DIR): a finished session's whole log (newest page first,
 * older pages as the reader scrolls up, the activity strip jumping to the
 * start, Download saving every line), and a live session whose archive and
 * live buffer overlap inside a one-millisecond burst — history then live
 * lines, each once — and whose archive is behind the live buffer until it
 * catches up, the gap then filled. Last, the archive writer's own objects
 * (a session that ends is archived at once) read back through the page.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { chromium, type Browser, type Page } from "playwright-core";
import { formatLines, type ArchivedLine } from "../src/logs/archive/format.ts";
import { objectKey } from "../src/logs/archive/keys.ts";
import { DirectoryStore } from "../src/storage/directory.ts";
import { BrokerPeer, insertSession, startProcessor, testWorld, waitFor, type RunningProcessor } from "./support/processor.ts";

setDefaultTimeout(90_000);

const BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"];
const OUTPUT = new URL("../test-output/", import.meta.url);
const SGC = 5;
// Whole minutes in the past, so every line's minute is over; the live
// sessions' lines stay within the hour the writer (if running) holds them.
const BASE = Math.floor((Date.now() - 3 * 3600_000) / 60_000) * 60_000;
const LIVE_BASE = Math.floor((Date.now() - 20 * 60_000) / 60_000) * 60_000;

let world: Awaited<ReturnType<typeof testWorld>>;
let dir: string;
let store: DirectoryStore;
let processor: RunningProcessor;
let peer: BrokerPeer;
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];

beforeAll(async () => {
  world = await testWorld("viewerhist");
  dir = await mkdtemp(join(tmpdir(), "viewer-archive-"));
  store = new DirectoryStore(dir);
  // The archive writer (when running) holds lines for an hour after their
  // minute: the only objects during the test are the ones written here.
  processor = await startProcessor(world.vhost, world.db, { LOG_ARCHIVE_DIR: dir, LOG_ARCHIVE_GRACE_SECONDS: "3600" });
  peer = await BrokerPeer.connect(world.vhost.url);
  browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: BROWSER_ARGS });
  const context = await browser.newContext({ viewport: { width: 1280, height: 720 }, acceptDownloads: true });
  page = await context.newPage();
  page.on("pageerror", (e) => pageErrors.push(e.message));
});
afterAll(async () => {
  await browser?.close();
  await peer?.close();
  await processor?.stop();
  await world?.remove();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** One object and its complete row per minute the lines touch (part `part`). */
async function archive(sessionId: number, lines: ArchivedLine[], part = 0): Promise<void> {
  const byMinute = new Map<number, ArchivedLine[]>();
  for (const l of lines) {
    const m = Math.floor(l.timestamp / 60_000) * 60_000;
    byMinute.set(m, [...(byMinute.get(m) ?? []), l]);
  }
  const at = (ms: number) => new Date(ms).toISOString().replace("T", " ").replace("Z", "");
  for (const [minute, ls] of byMinute) {
    const key = objectKey(SGC, sessionId, minute, part);
    await store.put(key, gzipSync(formatLines(ls)));
    await world.sql`
      INSERT INTO log_references (session_id, sgc_id, file_path, start_time, end_time, line_count, source, minute_timestamp, state)
      VALUES (${sessionId}, ${SGC}, ${store.filePath(key)}, ${at(ls[0]!.timestamp)}::timestamp, ${at(ls[ls.length - 1]!.timestamp)}::timestamp,
              ${ls.length}, 'host', ${at(minute)}::timestamp, 'complete')`;
  }
}

/** `n` lines from `start`, 100 ms apart, every seventh on stderr, 50 in one millisecond from line `burst` on. */
function lines(n: number, start: number, prefix: string, burst = -1): ArchivedLine[] {
  return Array.from({ length: n }, (_, i) => ({
    timestamp: burst >= 0 && i >= burst && i < burst + 50 ? start + burst * 100 : start + i * 100,
    source: i % 7 === 3 ? "stderr" : "stdout",
    message: `${prefix} ${i}`,
  }));
}

let published = 0;
async function publish(sessionId: number, ls: ArchivedLine[]): Promise<void> {
  await Promise.all(ls.map((l) => peer.publish(`logs.session.${sessionId}`, { session_id: sessionId, ...l })));
  published += ls.length;
}
/** Every line published so far is in the service's live buffers. */
const buffered = () =>
  waitFor(() => processor.service.metrics.total("manman_log_lines_ingested_total") >= published, 20_000, "lines buffered");

async function downloaded(): Promise<string[]> {
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#download")]);
  const text = await readFile((await download.path())!, "utf8");
  return text.split("\n").filter((l) => l.length > 0).map((l) => l.replace(/^\S+ \S+ \S+\s+/, ""));
}
const count = () => page.locator("#count").textContent();
/** The message of the first row on screen. */
const topRow = () =>
  page.evaluate(() => {
    const top = document.getElementById("log")!.getBoundingClientRect().top;
    const row = [...document.querySelectorAll<HTMLElement>(".row")].find((r) => r.getBoundingClientRect().top >= top - 1);
    return row?.querySelector(".msg")?.textContent ?? null;
  });
/** Lines kept in the page, from the count beside the filter ("1,000 of 1,000 lines"). */
const kept = async () => Number((await count())?.split(" of ")[1]?.split(" ")[0]?.replaceAll(",", "") ?? 0);
/** Scrolls to the top until at least `expected` lines are in the page (each scroll to the top reads an older page). */
async function scrollUpUntil(expected: number): Promise<void> {
  await waitFor(
    async () => {
      await page.locator("#log").evaluate((el) => el.scrollTo({ top: 0 }));
      return (await kept()) >= expected;
    },
    30_000,
    `${expected} lines after scrolling up`,
  );
}

test("a finished session shows its whole log from the archive: newest page, older ones on scrolling up, a strip to jump, Download of every line", async () => {
  const sessionId = await insertSession(world.sql, SGC, "stopped");
  const all = lines(2500, BASE, "old", 1200); // ~4 minutes, a burst in the third
  await archive(sessionId, all);
  await page.goto(processor.url(`/sessions/${sessionId}`));
  await waitFor(async () => (await count())?.startsWith("1,000 of 1,000 lines"), 20_000, "the newest page");
  expect(await page.locator(".row .msg").last().textContent()).toBe("old 2499");
  expect(await page.locator("#history").getAttribute("data-state")).toBe("more");

  // The strip: a bar per minute; the first jumps to the session's first line (not yet in the page).
  await page.locator("#histogram:not([hidden]) .bar").first().waitFor();
  expect(await page.locator("#histogram .bar").count()).toBe(5);
  await page.locator("#histogram .bar").first().click();
  await waitFor(async () => (await topRow()) === "old 0", 15_000, "the jump to the first minute");
  await page.locator('#history[data-state="open"]').waitFor();
  await page.screenshot({ path: new URL("viewer-history-jump.png", OUTPUT).pathname });

  // Download reads the archive itself: every line once, in order, whatever the tab holds.
  expect(await downloaded()).toEqual(all.map((l) => l.message));

  // After the jump, scrolling down reads on towards the end.
  await waitFor(
    async () => {
      await page.locator("#log").evaluate((el) => el.scrollTo({ top: el.scrollHeight }));
      return (await page.locator(".row .msg").last().textContent()) === "old 2499";
    },
    30_000,
    "reading down to the end",
  );
  // A fresh page: older pages come in as the reader scrolls up from the newest.
  await page.reload();
  await waitFor(async () => (await count())?.startsWith("1,000 of 1,000 lines"), 20_000, "the newest page again");
  await scrollUpUntil(2000);
  await scrollUpUntil(2500);
  expect(await count()).toStartWith("2,500 of 2,500 lines");
  await page.locator('#history[data-state="whole"]').waitFor();
  // The last page read came in above the reader, who stays where they were: scroll up once more.
  await waitFor(
    async () => {
      await page.locator("#log").evaluate((el) => el.scrollTo({ top: 0 }));
      await page.waitForTimeout(100);
      return (await topRow()) === "old 0";
    },
    10_000,
    "the first line at the top",
  );
  expect(pageErrors).toEqual([]);
});

test("a live session: history, then the live lines, each once, although they overlap inside a one-millisecond burst", async () => {
  const sessionId = await insertSession(world.sql, SGC, "running");
  // 700 lines: the live buffer keeps the last 500 (from line 200, inside the burst of lines 180-229).
  const all = lines(700, LIVE_BASE, "live", 180);
  await publish(sessionId, all);
  // The archive has the first 600: it overlaps the live buffer by 400 lines, 30 of them in the burst's millisecond.
  await archive(sessionId, all.slice(0, 600));
  await buffered();

  await page.goto(processor.url(`/sessions/${sessionId}`));
  await page.locator('#conn[data-state="live"]').waitFor();
  await waitFor(async () => (await count())?.startsWith("700 of 700 lines"), 20_000, "history and live lines joined");
  await publish(sessionId, Array.from({ length: 5 }, (_, i) => ({ timestamp: LIVE_BASE + 100_000 + i, source: "stdout", message: `new ${i}` })));
  await page.locator(".row .msg", { hasText: "new 4" }).waitFor();
  const expected = [...all.map((l) => l.message), ...Array.from({ length: 5 }, (_, i) => `new ${i}`)];
  expect(await downloaded()).toEqual(expected);
  expect(await count()).toStartWith("705 of 705 lines");
  expect(await page.locator("#history").getAttribute("data-state")).toBe("whole");
  await waitFor(
    async () => {
      await page.locator("#log").evaluate((el) => el.scrollTo({ top: 0 }));
      await page.waitForTimeout(100);
      return (await topRow()) === "live 0";
    },
    10_000,
    "the session's first line at the top",
  );
  await page.screenshot({ path: new URL("viewer-history-seam.png", OUTPUT).pathname });
});

test("an archive behind the live buffer: the page says so, then fills the gap when the archive catches up", async () => {
  const sessionId = await insertSession(world.sql, SGC, "running");
  const all = lines(700, LIVE_BASE + 5 * 60_000, "gap");
  await publish(sessionId, all);
  await archive(sessionId, all.slice(0, 100)); // lines 100-199 are neither archived nor buffered yet
  await buffered();

  await page.goto(processor.url(`/sessions/${sessionId}`));
  await page.locator('#history[data-state="behind"]').waitFor({ timeout: 20_000 });
  expect(await count()).toStartWith("600 of 600 lines");
  // The archive writes the next minutes (as a later part of the same minute, and the minute after).
  await archive(sessionId, all.slice(100, 650), 1);
  await waitFor(async () => (await count())?.startsWith("700 of 700 lines"), 30_000, "the gap filled");
  expect(await page.locator("#history").getAttribute("data-state")).toBe("whole");
  expect(await downloaded()).toEqual(all.map((l) => l.message));
  expect(pageErrors).toEqual([]);
});

test("the archive writer's own objects: a session that ended shows each line once, from the archive and the live buffer alike", async () => {
  const sessionId = await insertSession(world.sql, SGC, "running");
  const all = lines(300, LIVE_BASE + 10 * 60_000, "written", 100);
  await publish(sessionId, all);
  await buffered();
  // The session ends: the writer archives its minutes at once (not after the hour's grace).
  await world.sql`UPDATE sessions SET status = 'stopped', ended_at = now() WHERE session_id = ${sessionId}`;
  await waitFor(
    async () => {
      const [r] = await world.sql<{ n: string | null }[]>`SELECT sum(line_count) AS n FROM log_references WHERE session_id = ${sessionId} AND state = 'complete'`;
      return Number(r?.n ?? 0) === all.length;
    },
    30_000,
    "the writer archived every line",
  );
  await page.goto(processor.url(`/sessions/${sessionId}`));
  await page.locator('#history[data-state="whole"]').waitFor({ timeout: 20_000 });
  await waitFor(async () => (await count())?.startsWith("300 of 300 lines"), 20_000, "every line once");
  expect(await downloaded()).toEqual(all.map((l) => l.message));
});
