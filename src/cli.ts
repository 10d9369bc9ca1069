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
  | { kind: "help"; text: string }
  | { kind: "version"; text: string }
  | { kind: "usage-error"; text: string };

/** Exit status main.ts should use after printing `text` (help, version, usage errors). */
export const EXIT_USAGE = 2;

interface Subcommand {
  summary: string;
  usage: string;
  /** Subcommand-specific flags beyond --help, with their meaning. */
  flags: Record<string, string>;
}

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
  const given = new Set<string>();
  for (const arg of args) {
    if (Object.hasOwn(SUBCOMMANDS[name]!.flags, arg)) given.add(arg);
    else if (arg.startsWith("-")) return usageError(`unknown option for ${name}: ${arg}`, name);
    else return usageError(`${name} takes no arguments, got: ${arg}`, name);
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

function version(): Command {
  return { kind: "version", text: `${PROGRAM} ${VERSION}` };
}

function help(name?: string): Command {
  return { kind: "help", text: name === undefined ? programHelp() : subcommandHelp(name) };
}

function usageError(problem: string, name?: string): Command {
  const hint = name === undefined ? `${PROGRAM} --help` : `${PROGRAM} ${name} --help`;
  const usage = name === undefined ? usageLines() : [`  ${SUBCOMMANDS[name]!.usage}`];
  return { kind: "usage-error", text: [`${PROGRAM}: ${problem}`, "", "Usage:", ...usage, "", `See \`${hint}\`.`].join("\n") };
}

function usageLines(): string[] {
  const rows: [string, string][] = [
    ...Object.values(SUBCOMMANDS).map((s) => [s.usage, s.summary] as [string, string]),
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
    `  ${sub.usage}`,
    "",
    "Options:",
    ...flags.map(([f, meaning]) => `  ${f.padEnd(width)}  ${meaning}`),
    "",
    ...environmentSection(),
    "",
  ].join("\n");
}
