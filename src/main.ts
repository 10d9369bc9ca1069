/**
 * The entry point: command line → config → service; signals. A first
 * SIGTERM/SIGINT drains gracefully, a second exits at once.
 */
import process from "node:process";
import { EXIT_USAGE, parseCommandLine } from "./cli.ts";
import { loadConfig } from "./config.ts";
import { runHealthcheck } from "./healthcheck.ts";
import { createLogger } from "./log.ts";
import { startService } from "./service.ts";
import { Metrics } from "./metrics.ts";
import { runCutover } from "./tools/cutover.ts";
import { runDlq } from "./tools/dlq.ts";
import { runDemo } from "./tools/demo.ts";
import { runMigrate } from "./tools/migrate.ts";
import { runSimulate } from "./tools/simulate.ts";
import { askYes } from "./tools/prompt.ts";
import { runWatch } from "./tools/watch.ts";
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
  // operator tools (src/tools/, docs/tools.md): results on stdout, progress and problems on stderr
  const streams = { stdout: process.stdout, stderr: process.stderr };
  // A reader that went away (`dlq list | head`, `watch | head`) ends the command quietly, as Unix tools do; held dead letters go back with the connection.
  if (parsed.kind !== "serve") process.stdout.on("error", () => process.exit(parsed.kind === "watch" ? 0 : 1));
  if (parsed.kind === "cutover") return runCutover(config, { dryRun: parsed.dryRun }, streams);
  if (parsed.kind === "migrate") return runMigrate(config, streams);
  if (parsed.kind === "dlq") {
    return runDlq(config, parsed.command, { streams, stdinIsTTY: process.stdin.isTTY === true, ask: (q) => askYes(q, process.stdin, process.stderr) });
  }
  if (parsed.kind === "watch") {
    const stop = new AbortController();
    for (const name of ["SIGINT", "SIGTERM"] as const) process.once(name, () => stop.abort());
    return runWatch(config, parsed, { streams, signal: stop.signal });
  }
  if (parsed.kind === "simulate" || parsed.kind === "demo") {
    // One shutdown signal for the whole run; a second Ctrl-C exits at once.
    const stop = new AbortController();
    for (const name of ["SIGINT", "SIGTERM"] as const) process.on(name, () => (stop.signal.aborted ? process.exit(1) : stop.abort()));
    if (parsed.kind === "demo") return runDemo(config, { name: parsed.name }, { streams, signal: stop.signal });
    return runSimulate(config, parsed, { streams, signal: stop.signal });
  }
  const logger = createLogger({ level: config.logLevel });

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
