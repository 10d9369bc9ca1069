/**
 * The command line, as pure code: argv in, what to do out. src/main.ts acts
 * on the answer (prints, exits, serves). Configuration never comes from
 * flags, only from the environment (CONTRACT §6), so the only flags are
 * --help, --version and a few that pick what a command does (its `flags`);
 * anything else is a usage error (exit 2).
 *
 * The version is read from package.json through a JSON import: the bundler
 * inlines it, so the compiled binary and the Deno bundle both carry it
 * without reading any file at run time.
 */
import pkg from "../package.json" with { type: "json" };
import { describeSettings } from "./config.ts";

export const PROGRAM = "manman-processor";
export const VERSION: string = pkg.version;

export type Command =
  | { kind: "serve" }
  | { kind: "migrate" }
  /** Ask a running service on HEALTH_CHECK_PORT; exit 0 when it answers 200. */
  | { kind: "healthcheck"; path: "/healthz" | "/readyz" }
  /** Remove the deployed log-processor's queues (src/tools/cutover.ts). */
  | { kind: "cutover"; dryRun: boolean }
  /** Read, replay or purge the dead-letter queue (src/tools/dlq.ts). */
  | { kind: "dlq"; command: DlqAction }
  /** Tail the external exchange (src/tools/watch.ts). */
  | { kind: "watch"; pattern: string; json: boolean }
  /** A simulated fleet of host managers against the configured broker and database (src/tools/simulate.ts). */
  | { kind: "simulate"; hosts: number; sessions: number; linesPerSecond: number; durationSeconds?: number; upstreamExact: boolean }
  /** The service and a simulated fleet on a vhost and database of their own (src/tools/demo.ts). */
  | { kind: "demo"; name: string }
  | { kind: "help"; text: string }
  | { kind: "version"; text: string }
  | { kind: "usage-error"; text: string };

/** --match, --reason and --limit of dlq replay and purge; only the ones given are set. */
export interface DlqFilterArgs {
  match?: string;
  reason?: string;
  limit?: number;
}

export type DlqAction =
  | { action: "list"; json: boolean }
  | { action: "show"; position: number; json: boolean }
  | { action: "replay"; filter: DlqFilterArgs }
  | { action: "purge"; filter: DlqFilterArgs; yes: boolean };

/** Exit status main.ts should use after printing `text` (help, version, usage errors). */
export const EXIT_USAGE = 2;

interface Subcommand {
  summary: string;
  /** One line, or one per form of the command (dlq's actions). */
  usage: string | readonly string[];
  /** The one line the program's help shows when `usage` has several. */
  synopsis?: string;
  /** Subcommand-specific flags beyond --help, with their meaning; `--name VALUE` takes a value. */
  flags: Record<string, string>;
}

const usages = (sub: Subcommand): readonly string[] => (typeof sub.usage === "string" ? [sub.usage] : sub.usage);

// Which dlq action takes which flags.
const DLQ_FLAGS: Record<DlqAction["action"], readonly string[]> = {
  list: ["--json"],
  show: ["--json"],
  replay: ["--match", "--reason", "--limit"],
  purge: ["--match", "--reason", "--limit", "--yes"],
};
const FILTERS = "[--match KEY_GLOB] [--reason TEXT] [--limit N]";

// simulate's defaults: a small fleet whose load any processor takes in its stride.
const SIMULATE_DEFAULTS = { hosts: 3, sessions: 10, linesPerSecond: 100 };
const DEMO_NAME = "manman-demo";

const SUBCOMMANDS: Record<string, Subcommand> = {
  serve: {
    summary: "consume events and logs, serve health, readiness and log streams (the default)",
    usage: `${PROGRAM} [serve]`,
    flags: {},
  },
  migrate: {
    summary: "apply the database migrations, then exit",
    usage: `${PROGRAM} migrate`,
    flags: {},
  },
  healthcheck: {
    summary: "exit 0 if the service on HEALTH_CHECK_PORT answers /healthz (for container health checks)",
    usage: `${PROGRAM} healthcheck [--ready]`,
    flags: { "--ready": "ask /readyz instead of /healthz" },
  },
  cutover: {
    summary: "remove the deployed log-processor's leftover queues from the broker (run once it is stopped)",
    usage: `${PROGRAM} cutover [--dry-run]`,
    flags: { "--dry-run": "print what would be removed; change nothing" },
  },
  dlq: {
    summary: "list, show, replay or purge the dead-letter queue (<QUEUE_NAME>-dlq)",
    synopsis: `${PROGRAM} dlq list|show N|replay|purge [options]`,
    usage: [
      `${PROGRAM} dlq list [--json]`,
      `${PROGRAM} dlq show N [--json]`,
      `${PROGRAM} dlq replay ${FILTERS}`,
      `${PROGRAM} dlq purge ${FILTERS} [--yes]`,
    ],
    flags: {
      "--json": "list, show: JSON instead of text",
      "--match KEY_GLOB": "replay, purge: only messages whose original routing key matches (* any characters, ? one)",
      "--reason TEXT": "replay, purge: only messages whose reason contains TEXT (any case)",
      "--limit N": "replay, purge: at most N messages",
      "--yes": "purge: do not ask (required when stdin is not a terminal)",
    },
  },
  watch: {
    summary: "print the events on the external exchange (EXTERNAL_EXCHANGE) as they are published, until Ctrl-C",
    usage: `${PROGRAM} watch [PATTERN] [--json]`,
    flags: { "--json": "one JSON object per line: routing_key, timestamp, body (PATTERN: a binding key, default manman.#)" },
  },
  simulate: {
    summary: "publish what a fleet of host managers would (hosts, sessions, log lines) to the configured broker, creating their rows in the configured database; a load tool",
    usage: `${PROGRAM} simulate [--hosts N] [--sessions N] [--lines-per-second N] [--duration S] [--upstream-exact]`,
    flags: {
      "--hosts N": `hosts that come online and heartbeat every 5 s (default ${SIMULATE_DEFAULTS.hosts})`,
      "--sessions N": `sessions alive at once; each starts, runs, then stops or crashes, and is followed by a new one (default ${SIMULATE_DEFAULTS.sessions})`,
      "--lines-per-second N": `log lines a second, shared by the running sessions (default ${SIMULATE_DEFAULTS.linesPerSecond})`,
      "--duration S": "stop after S seconds (default: at Ctrl-C)",
      "--upstream-exact": "send only what a deployed host manager sends: stdout lines only, batched 50 or 1 s, no host lines",
    },
  },
  demo: {
    summary: `run the service and a simulated fleet on a vhost and database of their own (${DEMO_NAME}, created if missing, kept afterwards) and print the viewer's URL; Ctrl-C stops`,
    usage: `${PROGRAM} demo [--name NAME]`,
    flags: { "--name NAME": `the vhost and database to use (default ${DEMO_NAME})` },
  },
};

const HELP_FLAGS = new Set(["-h", "--help"]);
const VERSION_FLAGS = new Set(["-V", "--version"]);

/** `argv` is what follows the program name (process.argv.slice(2)). */
export function parseCommandLine(argv: readonly string[]): Command {
  const [first, ...rest] = argv;
  if (first === undefined) return { kind: "serve" };
  if (HELP_FLAGS.has(first)) return rest.length === 0 ? help() : usageError(`unexpected argument after ${first}: ${rest[0]}`);
  if (VERSION_FLAGS.has(first)) return rest.length === 0 ? version() : usageError(`unexpected argument after ${first}: ${rest[0]}`);
  if (first === "help") {
    if (rest.length === 0) return help();
    const [name, ...more] = rest;
    if (more.length > 0) return usageError(`help takes one command, got: ${rest.join(" ")}`);
    return Object.hasOwn(SUBCOMMANDS, name) ? help(name) : usageError(`unknown command: ${name}`);
  }
  if (first.startsWith("-")) return usageError(`unknown option: ${first}`);
  if (!Object.hasOwn(SUBCOMMANDS, first)) return usageError(`unknown command: ${first}`);
  return parseSubcommand(first, rest);
}

function parseSubcommand(name: string, args: readonly string[]): Command {
  // --help anywhere wins, as in most CLIs: `migrate --whatever --help` helps.
  if (args.some((a) => HELP_FLAGS.has(a))) return help(name);
  // `--name VALUE` in the table takes a value (`--name VALUE` or `--name=VALUE`); others are switches.
  const spec = new Map(Object.keys(SUBCOMMANDS[name]!.flags).map((f) => [f.split(" ")[0]!, f.split(" ")[1]] as const));
  const given = new Map<string, string | true>();
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith("-")) {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const flag = arg.startsWith("--") && eq > 0 ? arg.slice(0, eq) : arg;
    const inline = flag === arg ? undefined : arg.slice(eq + 1);
    const value = spec.get(flag);
    if (!spec.has(flag) || (value === undefined && inline !== undefined)) return usageError(`unknown option for ${name}: ${arg}`, name);
    if (value === undefined) given.set(flag, true);
    else {
      const v = inline ?? args[++i];
      if (v === undefined) return usageError(`${flag} needs a value (${value})`, name);
      given.set(flag, v);
    }
  }
  if (name === "dlq") return parseDlq(positional, given);
  if (name === "watch") {
    if (positional.length > 1) return usageError(`watch takes one pattern, got: ${positional.join(" ")}`, name);
    return { kind: "watch", pattern: positional[0] ?? "manman.#", json: given.has("--json") };
  }
  if (positional.length > 0) return usageError(`${name} takes no arguments, got: ${positional[0]}`, name);
  if (name === "simulate") return parseSimulate(given);
  if (name === "demo") {
    const demoName = given.get("--name");
    if (typeof demoName === "string" && !/^[A-Za-z0-9_-]{1,63}$/.test(demoName)) return usageError(`--name must be 1 to 63 letters, digits, - or _, got: ${demoName}`, name);
    return { kind: "demo", name: typeof demoName === "string" ? demoName : DEMO_NAME };
  }
  switch (name) {
    case "serve":
      return { kind: "serve" };
    case "migrate":
      return { kind: "migrate" };
    case "cutover":
      return { kind: "cutover", dryRun: given.has("--dry-run") };
    default:
      return { kind: "healthcheck", path: given.has("--ready") ? "/readyz" : "/healthz" };
  }
}

function parseDlq(positional: string[], given: Map<string, string | true>): Command {
  const [action, ...rest] = positional;
  if (action === undefined) return usageError("dlq needs an action: list, show, replay or purge", "dlq");
  if (!Object.hasOwn(DLQ_FLAGS, action)) return usageError(`unknown dlq action: ${action} (list, show, replay or purge)`, "dlq");
  const act = action as DlqAction["action"];
  for (const flag of given.keys()) if (!DLQ_FLAGS[act].includes(flag)) return usageError(`${flag} is not an option of dlq ${act}`, "dlq");
  const json = given.has("--json");
  if (act === "show") {
    if (rest.length !== 1) return usageError(`dlq show takes one message number, got: ${rest.length === 0 ? "none" : rest.join(" ")}`, "dlq");
    const position = wholeNumber(rest[0]!);
    if (position === undefined) return usageError(`dlq show: the message number must be a whole number of at least 1, got: ${rest[0]}`, "dlq");
    return { kind: "dlq", command: { action: "show", position, json } };
  }
  if (rest.length > 0) return usageError(`dlq ${act} takes no arguments, got: ${rest[0]}`, "dlq");
  if (act === "list") return { kind: "dlq", command: { action: "list", json } };
  const filter: DlqFilterArgs = {};
  const match = given.get("--match");
  const reason = given.get("--reason");
  const limit = given.get("--limit");
  if (typeof match === "string") filter.match = match;
  if (typeof reason === "string") filter.reason = reason;
  if (typeof limit === "string") {
    const n = wholeNumber(limit);
    if (n === undefined) return usageError(`--limit must be a whole number of at least 1, got: ${limit}`, "dlq");
    filter.limit = n;
  }
  return act === "replay" ? { kind: "dlq", command: { action: "replay", filter } } : { kind: "dlq", command: { action: "purge", filter, yes: given.has("--yes") } };
}

function parseSimulate(given: Map<string, string | true>): Command {
  const numbers: Record<string, number> = {};
  for (const flag of ["--hosts", "--sessions", "--lines-per-second", "--duration"]) {
    const text = given.get(flag);
    if (typeof text !== "string") continue;
    const n = wholeNumber(text);
    if (n === undefined) return usageError(`${flag} must be a whole number of at least 1, got: ${text}`, "simulate");
    numbers[flag] = n;
  }
  const command: Command = {
    kind: "simulate",
    hosts: numbers["--hosts"] ?? SIMULATE_DEFAULTS.hosts,
    sessions: numbers["--sessions"] ?? SIMULATE_DEFAULTS.sessions,
    linesPerSecond: numbers["--lines-per-second"] ?? SIMULATE_DEFAULTS.linesPerSecond,
    upstreamExact: given.has("--upstream-exact"),
  };
  if (numbers["--duration"] !== undefined) command.durationSeconds = numbers["--duration"];
  return command;
}

function wholeNumber(text: string): number | undefined {
  return /^[1-9]\d{0,8}$/.test(text) ? Number(text) : undefined;
}

function version(): Command {
  return { kind: "version", text: `${PROGRAM} ${VERSION}` };
}

function help(name?: string): Command {
  return { kind: "help", text: name === undefined ? programHelp() : subcommandHelp(name) };
}

function usageError(problem: string, name?: string): Command {
  const hint = name === undefined ? `${PROGRAM} --help` : `${PROGRAM} ${name} --help`;
  const usage = name === undefined ? usageLines() : usages(SUBCOMMANDS[name]!).map((u) => `  ${u}`);
  return { kind: "usage-error", text: [`${PROGRAM}: ${problem}`, "", "Usage:", ...usage, "", `See \`${hint}\`.`].join("\n") };
}

function usageLines(): string[] {
  const rows: [string, string][] = [
    ...Object.values(SUBCOMMANDS).map((s) => [s.synopsis ?? usages(s)[0]!, s.summary] as [string, string]),
    [`${PROGRAM} help [command]`, "this text, or a command's"],
    [`${PROGRAM} --version`, "print the version"],
  ];
  const width = Math.max(...rows.map(([u]) => u.length));
  return rows.map(([u, s]) => `  ${u.padEnd(width)}  ${s}`);
}

// Every help text ends with every environment variable and its default, so
// an operator never needs the README to find a setting's name.
function environmentSection(): string[] {
  return [
    "Environment (read at start; no .env or config file is loaded):",
    ...describeSettings(),
  ];
}

function programHelp(): string {
  return [
    `${PROGRAM} ${VERSION}: event and log processor of the ManManV2 control plane.`,
    "",
    "Usage:",
    ...usageLines(),
    "",
    "Options:",
    "  -h, --help     show help (after a command: that command's help)",
    "  -V, --version  print the version",
    "",
    "Exit status: 0 done, 1 failed, 2 bad usage or bad configuration.",
    "",
    ...environmentSection(),
    "",
  ].join("\n");
}

function subcommandHelp(name: string): string {
  const sub = SUBCOMMANDS[name]!;
  const flags = Object.entries({ ...sub.flags, "-h, --help": "show this help" });
  const width = Math.max(...flags.map(([f]) => f.length));
  return [
    `${PROGRAM} ${name}: ${sub.summary}.`,
    "",
    "Usage:",
    ...usages(sub).map((u) => `  ${u}`),
    "",
    "Options:",
    ...flags.map(([f, meaning]) => `  ${f.padEnd(width)}  ${meaning}`),
    "",
    ...environmentSection(),
    "",
  ].join("\n");
}
