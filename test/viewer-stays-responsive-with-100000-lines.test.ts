/**
 * 100,000 lines in one tab: the DOM holds only the rows on screen
 * (virtualised), and filtering, searching and scrolling stay quick. Prints
 * its figures; the limits asserted are loose (a busy 2-core machine).
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { chromium, type Browser } from "playwright-core";
import { BrokerPeer, insertSession, startProcessor, testWorld, waitFor, type RunningProcessor } from "./support/processor.ts";

setDefaultTimeout(180_000);
const LINES = 100_000;
// Lines in flight to the broker at once: confirms come back in batches.
const PUBLISH_WINDOW = 1000;

let world: Awaited<ReturnType<typeof testWorld>>;
let processor: RunningProcessor;
let peer: BrokerPeer;
let browser: Browser;

beforeAll(async () => {
  world = await testWorld("viewer100k");
  processor = await startProcessor(world.vhost, world.db, { LOG_BUFFER_MAX_MESSAGES: String(LINES), LOG_LEVEL: "info" });
  peer = await BrokerPeer.connect(world.vhost.url);
  browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
});
afterAll(async () => {
  await browser?.close();
  await peer?.close();
  await processor?.stop();
  await world?.remove();
});

test("a tab with 100,000 lines keeps a small DOM and filters, searches and scrolls quickly", async () => {
  const sessionId = await insertSession(world.sql, 1, "running");
  const started = Date.now();
  for (let i = 0; i < LINES; i += PUBLISH_WINDOW) {
    const batch = [];
    for (let j = i + 1; j <= Math.min(LINES, i + PUBLISH_WINDOW); j++) {
      const source = j % 10 === 0 ? "stderr" : "stdout";
      batch.push(peer.publish(`logs.session.${sessionId}`, { session_id: sessionId, timestamp: started + j, source, message: `\x1b[36mline\x1b[0m ${j} of the load test` }));
    }
    await Promise.all(batch);
  }
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const loadStart = Date.now();
  await page.goto(processor.url(`/sessions/${sessionId}`));
  await waitFor(async () => (await page.locator("#count").textContent())?.startsWith("100,000 of 100,000"), 120_000, "all lines in the page");
  const loadMs = Date.now() - loadStart;

  const domRows = await page.locator(".row").count();
  expect(domRows).toBeLessThan(200);

  const time = async (what: () => Promise<unknown>) => {
    const t = Date.now();
    await what();
    return Date.now() - t;
  };
  const searchMs = await time(async () => {
    await page.fill("#search", "line 99999 of");
    await waitFor(async () => (await page.locator(".row").count()) === 1, 20_000, "search over 100,000 lines");
  });
  const filterMs = await time(async () => {
    await page.fill("#search", "");
    await page.uncheck("#show-stdout");
    await waitFor(async () => (await page.locator("#count").textContent())?.startsWith("10,000 of"), 20_000, "source filter");
  });
  await page.check("#show-stdout");
  await waitFor(async () => (await page.locator("#count").textContent())?.startsWith("100,000 of"), 20_000);
  // One scroll jump to the top and a frame after it.
  const scrollMs = await time(() =>
    page.locator("#log").evaluate((el) => new Promise((r) => (el.scrollTo({ top: 0 }), requestAnimationFrame(() => requestAnimationFrame(r))))),
  );
  expect(await page.locator(".row .msg").first().textContent()).toBe("line 1 of the load test");
  expect(await page.locator(".row").count()).toBeLessThan(200);
  const heapMb = await page.evaluate(() => Math.round(((performance as unknown as { memory?: { usedJSHeapSize: number } }).memory?.usedJSHeapSize ?? 0) / 1e6));

  console.log(
    `viewer with ${LINES.toLocaleString()} lines: backlog in the page after ${loadMs} ms, ${domRows} rows in the DOM, ` +
      `search ${searchMs} ms, source filter ${filterMs} ms, scroll to top ${scrollMs} ms, JS heap ${heapMb} MB`,
  );
  expect(searchMs).toBeLessThan(20_000);
});
