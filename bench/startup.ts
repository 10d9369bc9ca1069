/**
 * `bun run bench:startup`: how big the shipped artefacts are and how long
 * they take from exec to a 200 on /readyz (database, broker and event
 * consumer up), median of several runs. Target: ≤ 500 ms on a 2-core box.
 *
 * Each artefact is built into a temp folder and started from there with only
 * the service URLs in its environment, against its own vhost and database on
 * the local services. The first run migrates a fresh database and is shown
 * apart; the median is over the runs after it (an already migrated database,
 * the usual restart).
 *
 * Options: --runs N (default 9), --deno (also time the Deno bundle).
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createDatabase, createVhost } from "../test/support/services.ts";

const ROOT = join(import.meta.dir, "..");
const DENO = join(ROOT, "node_modules", "deno", "deno");
// 10 ms between /readyz polls: small beside the 500 ms target, cheap enough
// not to slow the start it measures.
const POLL_MS = 10;
// 30 s: far beyond the target; a start that slow is a failure, not a figure.
const GIVE_UP_MS = 30_000;

const { values: opts } = parseArgs({ options: { runs: { type: "string", default: "9" }, deno: { type: "boolean", default: false } } });
const runs = Math.max(2, Number(opts.runs));

const out = mkdtempSync(join(tmpdir(), "mm-bench-startup-"));
const build = spawnSync(process.execPath, [join(ROOT, "scripts/build.ts"), "--outdir", out], { cwd: ROOT, stdio: ["ignore", "ignore", "inherit"] });
if (build.status !== 0) throw new Error("build failed");
const binary = join(out, "manman-processor");
const bundle = join(out, "manman-processor.js");

const [vhost, db] = await Promise.all([createVhost("bench_startup"), createDatabase("bench_startup")]);
const env = { RABBITMQ_URL: vhost.url, DATABASE_URL: db.url, GRPC_PORT: "0" };

async function freePort(): Promise<number> {
  const { createServer } = await import("node:net");
  return new Promise((resolve, reject) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

/** Exec → first 200 on /readyz, in ms, and the resident memory then. */
async function startOnce(command: string[]): Promise<{ ms: number; rssMiB: number }> {
  const port = await freePort();
  const started = performance.now();
  const child = spawn(command[0]!, command.slice(1), { cwd: out, env: { ...env, HEALTH_CHECK_PORT: String(port) }, stdio: "ignore" });
  const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode} before ready`);
      if (performance.now() - started > GIVE_UP_MS) throw new Error(`not ready in ${GIVE_UP_MS} ms`);
      const ok = await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.status === 200, () => false);
      if (ok) break;
      await Bun.sleep(POLL_MS);
    }
    const ms = performance.now() - started;
    const status = readFileSync(`/proc/${child.pid}/status`, "utf8");
    const rssKiB = Number(status.match(/VmRSS:\s+(\d+)/)?.[1] ?? 0);
    return { ms, rssMiB: rssKiB / 1024 };
  } finally {
    child.kill("SIGTERM");
    await exited;
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};
const mib = (p: string) => (statSync(p).size / 2 ** 20).toFixed(1);

async function measure(label: string, command: string[]): Promise<void> {
  const first = await startOnce(command);
  const rest = [];
  for (let i = 1; i < runs; i++) rest.push(await startOnce(command));
  const times = rest.map((r) => r.ms);
  console.log(
    `${label}: start → ready median ${median(times).toFixed(0)} ms over ${times.length} runs ` +
      `(min ${Math.min(...times).toFixed(0)}, max ${Math.max(...times).toFixed(0)}); ` +
      `first run on a fresh database ${first.ms.toFixed(0)} ms; RSS when ready ${median(rest.map((r) => r.rssMiB)).toFixed(0)} MiB`,
  );
}

try {
  console.log(`executable manman-processor: ${mib(binary)} MiB; Deno bundle manman-processor.js: ${mib(bundle)} MiB`);
  // Each artefact gets its own database, so both see a fresh one first.
  await measure("binary", [binary]);
  if (opts.deno) {
    const db2 = await createDatabase("bench_startup");
    env.DATABASE_URL = db2.url;
    try {
      await measure("deno bundle", [DENO, "run", "-A", bundle]);
    } finally {
      await db2.remove();
    }
  }
} finally {
  await Promise.all([vhost.remove(), db.remove()]);
  rmSync(out, { recursive: true, force: true });
}
