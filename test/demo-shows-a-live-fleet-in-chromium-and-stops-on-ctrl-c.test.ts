/**
 * `manman-processor demo` as a newcomer runs it: a process with only the
 * broker's and the database's addresses. It prints the viewer's URL within
 * seconds; in Chromium the page lists the fleet's sessions and a running
 * session's page shows lines coloured by their ANSI codes; Ctrl-C (SIGINT)
 * ends it with status 0, and its vhost and database are still there.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Browser } from "playwright-core";
import postgres from "postgres";
import { BROKER_HOST, BROKER_PORT, PG_ADMIN_URL, waitFor } from "./support/services.ts";

// A browser and the service starting on a busy 2-core machine.
setDefaultTimeout(90_000);
const ROOT = join(import.meta.dir, "..");
const OUTPUT = new URL("../test-output/", import.meta.url);
const BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"];
const NAME = `mmdemo_${Date.now().toString(36)}`;

let child: ChildProcess;
let stdout = "";
let stderr = "";
let exited: Promise<number | null>;
let browser: Browser;

beforeAll(async () => {
  await mkdir(OUTPUT, { recursive: true });
  browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: BROWSER_ARGS });
});
afterAll(async () => {
  await browser?.close();
  if (child && child.exitCode === null) child.kill("SIGKILL");
  // The demo keeps its vhost and database for inspection; the test's are removed.
  await new Promise((r) => spawn("rabbitmqctl", ["-q", "delete_vhost", NAME]).on("exit", r));
  const admin = postgres(PG_ADMIN_URL, { max: 1, onnotice: () => {} });
  await admin.unsafe(`DROP DATABASE IF EXISTS "${NAME}" WITH (FORCE)`).catch(() => {});
  await admin.end();
});

test("demo prints the viewer's URL within seconds; the page lists sessions and shows coloured lines; Ctrl-C exits 0", async () => {
  const started = Date.now();
  child = spawn(process.execPath, [join(ROOT, "src/main.ts"), "demo", "--name", NAME], {
    env: {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "/tmp",
      RABBITMQ_URL: `amqp://guest:guest@${BROKER_HOST}:${BROKER_PORT}/`,
      DATABASE_URL: PG_ADMIN_URL,
      HEALTH_CHECK_PORT: "0",
      GRPC_PORT: "0",
      LOG_ARCHIVE_DIR: join(tmpdir(), `manman-demo-test-${process.pid}`),
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout!.on("data", (c: Buffer) => (stdout += c.toString()));
  child.stderr!.on("data", (c: Buffer) => (stderr += c.toString()));
  exited = new Promise((resolve) => child.on("exit", (code) => resolve(code)));

  const url = await waitFor(() => stdout.match(/demo: viewer: (http:\/\/\S+)/)?.[1], 45_000, `the viewer URL (stdout: ${stdout} stderr: ${stderr})`);
  // "Within a few seconds" on an idle machine; a loose bound here, the machine is shared.
  expect(Date.now() - started).toBeLessThan(45_000);
  expect(stdout).toContain(`vhost ${NAME}`);
  expect(stdout).toContain(`database ${NAME}`);

  const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(url);
  await waitFor(async () => (await page.locator("#sessions tbody tr[data-session-id]").count()) >= 3, 30_000, "sessions listed");
  const running = page.locator("#sessions tbody tr", { has: page.locator(".status", { hasText: /^running$/ }) }).first();
  await running.waitFor({ timeout: 30_000 });
  await page.screenshot({ path: new URL("demo-sessions.png", OUTPUT).pathname });
  const id = await running.getAttribute("data-session-id");

  await page.goto(new URL(`/sessions/${id}`, url).toString());
  await page.locator('#conn[data-state="live"]').waitFor({ timeout: 30_000 });
  // Coloured spans from the lines' ANSI codes (fg-N classes or an inline colour).
  await page.locator(".row .msg span[class*='fg-'], .row .msg span[style*='color']").first().waitFor({ timeout: 30_000 });
  const rowsBefore = await page.locator(".row .msg").count();
  expect(rowsBefore).toBeGreaterThan(0);
  await page.screenshot({ path: new URL("demo-session.png", OUTPUT).pathname });
  expect(errors).toEqual([]);

  const stopAt = Date.now();
  child.kill("SIGINT");
  expect(await exited).toBe(0);
  // A drain is bounded by the service's own deadlines; well under this.
  expect(Date.now() - stopAt).toBeLessThan(30_000);
  expect(stdout).toMatch(/demo: sent in [\d.]+ s: 6 host status/);
  expect(stdout).toContain("demo: stopped");

  // Kept for inspection: the database holds the fleet's rows.
  const sql = postgres(PG_ADMIN_URL.replace(/\/[^/]*$/, `/${NAME}`), { max: 1, onnotice: () => {} });
  try {
    expect((await sql`SELECT name FROM servers ORDER BY name`).map((r) => r.name)).toEqual(["demo-host-1", "demo-host-2", "demo-host-3"]);
    expect((await sql`SELECT count(*)::int AS n FROM sessions`)[0]!.n).toBeGreaterThanOrEqual(8);
  } finally {
    await sql.end();
  }
});
