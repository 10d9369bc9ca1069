/**
 * The entry point: command line → config → service; signals. A first
 * SIGTERM/SIGINT drains gracefully, a second exits at once.
 */
import process from "node:process";
import { EXIT_USAGE, parseCommandLine } from "./cli.ts";
import { loadConfig } from "./config.ts";
import { runHealthcheck } from "./healthcheck.ts";
import { createLogger } from "./log.ts";
import { createPool } from "./db/pool.ts";
import { migrate } from "./db/migrate.ts";
import { startService } from "./service.ts";
import { Metrics } from "./metrics.ts";
import { runCutover } from "./tools/cutover.ts";
import { errorMessage } from "./util/errors.ts";
import { judgeStrayRejection } from "./stray-errors.ts";

async function main(argv: string[]): Promise<number> {
  const parsed = parseCommandLine(argv);
  switch (parsed.kind) {
    case "help":
    case "version":
      process.stdout.write(parsed.text.endsWith("\n") ? parsed.text : parsed.text + "\n");
      return 0;
    case "usage-error":
      process.stderr.write(parsed.text + "\n");
      return EXIT_USAGE;
  }
  const command = parsed.kind;
  const loaded = loadConfig(process.env);
  if (!loaded.ok) {
    for (const p of loaded.problems) process.stderr.write(`config: ${p}\n`);
    return 2;
  }
  const config = loaded.config;
  if (parsed.kind === "healthcheck") {
    const r = await runHealthcheck(config.healthCheckPort, parsed.path);
    (r.exitCode === 0 ? process.stdout : process.stderr).write(r.line + "\n");
    return r.exitCode;
  }
  if (parsed.kind === "cutover") {
    return runCutover(config, { dryRun: parsed.dryRun }, {
      out: (line) => void process.stdout.write(line + "\n"),
      err: (line) => void process.stderr.write(line + "\n"),
    });
  }
  const logger = createLogger({ level: config.logLevel });

  if (command === "migrate") {
    const sql = createPool({ url: config.postgresUrl, max: 1, statementTimeoutMs: 60_000 });
    try {
      const r = await migrate(sql, { logger });
      logger.info("migrated database", { applied: r.applied, already_applied: r.alreadyApplied });
      return 0;
    } finally {
      await sql.end({ timeout: 5 });
    }
  }

  const controller = new AbortController();
  let signals = 0;
  const onSignal = (name: string) => {
    signals++;
    if (signals === 1) {
      logger.info("received signal; draining (send again to exit at once)", { signal: name });
      controller.abort();
    } else {
      logger.warn("second signal; exiting at once", { signal: name });
      process.exit(1);
    }
  };
  process.on("SIGTERM", () => onSignal("SIGTERM"));
  process.on("SIGINT", () => onSignal("SIGINT"));

  // A stray rejection: a known driver trap (src/stray-errors.ts) is logged,
  // counted and lived with; anything else drains the process and exits 1 so
  // its supervisor starts a fresh one. Messages are acked only after their
  // work is done, so nothing is lost either way.
  const metrics = new Metrics();
  let exitCode = 0;
  process.on("unhandledRejection", (reason) => {
    const verdict = judgeStrayRejection(reason);
    metrics.inc("manman_unhandled_errors_total", "promise rejections nobody handled, by verdict", { verdict });
    if (verdict === "known_driver_trap") {
      logger.warn("stray driver error of a lost connection; carrying on", { error: errorMessage(reason) });
      return;
    }
    logger.error("unexpected error; draining and exiting 1 for the supervisor to restart", { error: errorMessage(reason) });
    exitCode = 1;
    controller.abort();
  });

  const service = await startService({ config, logger, signal: controller.signal, metrics });
  await service.stopped;
  return exitCode;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level: "error", msg: "fatal", error: errorMessage(err) })}\n`);
    process.exit(1);
  },
);
