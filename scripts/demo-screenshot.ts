/**
 * Takes docs/demo.png and docs/demo-sessions.png from the real demo: starts `manman-processor demo` on
 * a throwaway vhost and database, lets the fleet run for a while so a
 * session has a screenful of lines, photographs that session's page in
 * Chromium, stops the demo with SIGINT and removes what it made.
 *
 *   bun scripts/demo-screenshot.ts        (broker and PostgreSQL as the tests use them)
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { chromium } from "playwright-core";
import postgres from "postgres";

const ROOT = join(import.meta.dir, "..");
const NAME = `mmdemo_shot_${Date.now().toString(36)}`;
// 40 s: a few sessions have ended (the list shows stopped and crashed ones) and a running one has filled the view.
const RUN_MS = 40_000;
const PG = process.env.TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

const child = spawn(process.execPath, [join(ROOT, "src/main.ts"), "demo", "--name", NAME], {
  env: { ...process.env, RABBITMQ_URL: process.env.RABBITMQ_URL ?? "amqp://guest:guest@127.0.0.1:5672/", DATABASE_URL: PG, HEALTH_CHECK_PORT: "0", GRPC_PORT: "0", LOG_ARCHIVE_DIR: `/tmp/${NAME}` },
  stdio: ["ignore", "pipe", "inherit"],
});
let out = "";
const url = await new Promise<string>((resolve) => child.stdout!.on("data", (c: Buffer) => {
  out += c.toString();
  const m = out.match(/demo: viewer: (http:\/\/\S+)/);
  if (m) resolve(m[1]!);
}));
await Bun.sleep(RUN_MS);
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--headless", "--no-sandbox", "--disable-gpu"] });
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 720 }, deviceScaleFactor: 1 });
  const sql = postgres(PG.replace(/\/[^/]*$/, `/${NAME}`), { max: 1 });
  // The running session that started first: the most lines on its page.
  const [row] = await sql`SELECT session_id FROM sessions WHERE status = 'running' ORDER BY started_at LIMIT 1`;
  await sql.end();
  await page.goto(new URL(`/sessions/${row!.session_id}`, url).toString());
  await page.locator('#conn[data-state="live"]').waitFor();
  await Bun.sleep(3_000);
  await page.screenshot({ path: join(ROOT, "docs/demo.png") });
  await page.goto(url);
  await page.locator("#sessions tbody tr").first().waitFor();
  await Bun.sleep(1_000);
  await page.screenshot({ path: join(ROOT, "docs/demo-sessions.png") });
} finally {
  await browser.close();
  child.kill("SIGINT");
  await new Promise((r) => child.on("exit", r));
  spawn("rabbitmqctl", ["-q", "delete_vhost", NAME]);
  const admin = postgres(PG, { max: 1 });
  await admin.unsafe(`DROP DATABASE IF EXISTS "${NAME}" WITH (FORCE)`);
  await admin.end();
}
console.log("wrote docs/demo.png and docs/demo-sessions.png");
