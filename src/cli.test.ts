import { describe, expect, test } from "bun:test";
import pkg from "../package.json" with { type: "json" };
import { SETTINGS } from "./config.ts";
import { parseCommandLine, VERSION } from "./cli.ts";

const everyVariable = Object.values(SETTINGS).map((s) => s.env);

function textOf(argv: string[]): string {
  const c = parseCommandLine(argv);
  if (!("text" in c)) throw new Error(`expected text for ${argv.join(" ")}, got ${c.kind}`);
  return c.text;
}

describe("commands", () => {
  test("no arguments serves", () => {
    expect(parseCommandLine([])).toEqual({ kind: "serve" });
  });
  test("serve and migrate are commands", () => {
    expect(parseCommandLine(["serve"])).toEqual({ kind: "serve" });
    expect(parseCommandLine(["migrate"])).toEqual({ kind: "migrate" });
  });
  test("healthcheck asks /healthz, or /readyz with --ready", () => {
    expect(parseCommandLine(["healthcheck"])).toEqual({ kind: "healthcheck", path: "/healthz" });
    expect(parseCommandLine(["healthcheck", "--ready"])).toEqual({ kind: "healthcheck", path: "/readyz" });
  });
  test("cutover removes, or with --dry-run only reports", () => {
    expect(parseCommandLine(["cutover"])).toEqual({ kind: "cutover", dryRun: false });
    expect(parseCommandLine(["cutover", "--dry-run"])).toEqual({ kind: "cutover", dryRun: true });
    expect(parseCommandLine(["cutover", "--dry-run", "--dry-run"])).toEqual({ kind: "cutover", dryRun: true });
  });
  test("dlq list and show read, with --json as an option", () => {
    expect(parseCommandLine(["dlq", "list"])).toEqual({ kind: "dlq", command: { action: "list", json: false } });
    expect(parseCommandLine(["dlq", "list", "--json"])).toEqual({ kind: "dlq", command: { action: "list", json: true } });
    expect(parseCommandLine(["dlq", "show", "3"])).toEqual({ kind: "dlq", command: { action: "show", position: 3, json: false } });
    expect(parseCommandLine(["dlq", "--json", "show", "12"])).toEqual({ kind: "dlq", command: { action: "show", position: 12, json: true } });
  });
  test("dlq replay and purge take --match, --reason and --limit, as `--flag value` or `--flag=value`; purge takes --yes", () => {
    expect(parseCommandLine(["dlq", "replay"])).toEqual({ kind: "dlq", command: { action: "replay", filter: {} } });
    expect(parseCommandLine(["dlq", "replay", "--match", "status.session.*", "--reason=does not exist", "--limit", "10"])).toEqual({
      kind: "dlq",
      command: { action: "replay", filter: { match: "status.session.*", reason: "does not exist", limit: 10 } },
    });
    expect(parseCommandLine(["dlq", "purge"])).toEqual({ kind: "dlq", command: { action: "purge", filter: {}, yes: false } });
    expect(parseCommandLine(["dlq", "purge", "--yes", "--limit=2"])).toEqual({ kind: "dlq", command: { action: "purge", filter: { limit: 2 }, yes: true } });
    // A value that looks like a flag is still the value.
    expect(parseCommandLine(["dlq", "purge", "--reason", "--weird", "--yes"])).toEqual({ kind: "dlq", command: { action: "purge", filter: { reason: "--weird" }, yes: true } });
  });
  test("watch tails manman.# unless given a pattern, as text or --json", () => {
    expect(parseCommandLine(["watch"])).toEqual({ kind: "watch", pattern: "manman.#", json: false });
    expect(parseCommandLine(["watch", "manman.session.*", "--json"])).toEqual({ kind: "watch", pattern: "manman.session.*", json: true });
    expect(parseCommandLine(["watch", "--json", "#"])).toEqual({ kind: "watch", pattern: "#", json: true });
  });
  test("simulate runs a small fleet until Ctrl-C unless told its size, rate, duration and exactness", () => {
    expect(parseCommandLine(["simulate"])).toEqual({ kind: "simulate", hosts: 3, sessions: 10, linesPerSecond: 100, upstreamExact: false });
    expect(parseCommandLine(["simulate", "--hosts", "20", "--sessions=200", "--lines-per-second", "5000", "--duration", "60", "--upstream-exact"])).toEqual({
      kind: "simulate", hosts: 20, sessions: 200, linesPerSecond: 5000, durationSeconds: 60, upstreamExact: true,
    });
  });
  test("demo uses manman-demo unless given --name", () => {
    expect(parseCommandLine(["demo"])).toEqual({ kind: "demo", name: "manman-demo" });
    expect(parseCommandLine(["demo", "--name", "my_demo-2"])).toEqual({ kind: "demo", name: "my_demo-2" });
  });
});

describe("--version", () => {
  test("prints the package.json version", () => {
    expect(VERSION).toBe(pkg.version);
    for (const flag of ["--version", "-V"]) {
      expect(parseCommandLine([flag])).toEqual({ kind: "version", text: `manman-processor ${pkg.version}` });
    }
  });
});

describe("--help", () => {
  test("the program's help names every command and every environment variable", () => {
    for (const argv of [["--help"], ["-h"], ["help"]]) {
      const text = textOf(argv);
      expect(parseCommandLine(argv).kind).toBe("help");
      for (const cmd of ["serve", "migrate", "healthcheck", "cutover [--dry-run]", "dlq list|show N|replay|purge", "watch [PATTERN] [--json]", "simulate [--hosts N] [--sessions N] [--lines-per-second N] [--duration S] [--upstream-exact]", "demo [--name NAME]", "--version"]) expect(text).toContain(cmd);
      for (const name of everyVariable) expect(text).toContain(name);
    }
  });

  test("each command's help lists every environment variable with its default", () => {
    for (const cmd of ["serve", "migrate", "healthcheck", "cutover", "dlq", "watch", "simulate", "demo"]) {
      for (const argv of [[cmd, "--help"], [cmd, "-h"], ["help", cmd]]) {
        expect(parseCommandLine(argv).kind).toBe("help");
        const text = textOf(argv);
        expect(text).toContain(`manman-processor ${cmd}`);
        for (const name of everyVariable) expect(text).toContain(name);
        expect(text).toContain("(default: 8080)");
        expect(text).toContain("(default: 50053)");
        expect(text).toMatch(/DB_NAME\s.*\(default: manman\)/);
      }
    }
  });

  test("help never shows a secret's default", () => {
    // RABBITMQ_URL's default carries guest's password; operators copy help
    // into tickets, so secrets never print, not even defaults.
    expect(textOf(["--help"])).not.toContain("guest:guest");
  });

  test("--help wins over other arguments of a command", () => {
    expect(parseCommandLine(["migrate", "--nonsense", "--help"]).kind).toBe("help");
    expect(parseCommandLine(["cutover", "--dry-run", "-h"]).kind).toBe("help");
  });

  test("cutover's help explains --dry-run", () => {
    expect(textOf(["cutover", "--help"])).toMatch(/--dry-run\s+print what would be removed; change nothing/);
  });

  test("dlq's help shows each action's usage and every option with the actions it applies to", () => {
    for (const argv of [["dlq", "--help"], ["dlq", "replay", "--help"], ["help", "dlq"]]) {
      const text = textOf(argv);
      for (const usage of ["dlq list [--json]", "dlq show N [--json]", "dlq replay [--match KEY_GLOB] [--reason TEXT] [--limit N]", "dlq purge [--match KEY_GLOB] [--reason TEXT] [--limit N] [--yes]"]) {
        expect(text).toContain(`manman-processor ${usage}`);
      }
      expect(text).toMatch(/--match KEY_GLOB\s+replay, purge:/);
      expect(text).toMatch(/--yes\s+purge:/);
    }
  });

  test("simulate's and demo's help name every flag with its default", () => {
    const simulate = textOf(["simulate", "--help"]);
    expect(simulate).toMatch(/--hosts N\s+hosts that come online .*\(default 3\)/);
    expect(simulate).toMatch(/--sessions N\s+.*\(default 10\)/);
    expect(simulate).toMatch(/--lines-per-second N\s+.*\(default 100\)/);
    expect(simulate).toMatch(/--duration S\s+stop after S seconds/);
    expect(simulate).toMatch(/--upstream-exact\s+send only what a deployed host manager sends/);
    expect(textOf(["demo", "--help"])).toMatch(/--name NAME\s+the vhost and database to use \(default manman-demo\)/);
  });

  test("watch's help names the pattern's default and --json's fields", () => {
    expect(textOf(["watch", "--help"])).toMatch(/--json\s+one JSON object per line: routing_key, timestamp, body .*default manman\.#/);
  });
});

describe("usage errors", () => {
  test.each([
    [["simulate", "--hosts", "0"], "--hosts must be a whole number of at least 1, got: 0"],
    [["simulate", "--duration", "1.5"], "--duration must be a whole number of at least 1, got: 1.5"],
    [["simulate", "--lines-per-second"], "--lines-per-second needs a value (N)"],
    [["simulate", "--upstream-exact=yes"], "unknown option for simulate: --upstream-exact=yes"],
    [["simulate", "fast"], "simulate takes no arguments, got: fast"],
    [["demo", "--name", "a b"], "--name must be 1 to 63 letters, digits, - or _, got: a b"],
    [["--port=1"], "unknown option: --port=1"],
    [["-x"], "unknown option: -x"],
    [["start"], "unknown command: start"],
    [["constructor"], "unknown command: constructor"],
    [["migrate", "--dry-run"], "unknown option for migrate: --dry-run"],
    [["migrate", "now"], "migrate takes no arguments"],
    [["serve", "--ready"], "unknown option for serve: --ready"],
    [["cutover", "--force"], "unknown option for cutover: --force"],
    [["cutover", "--ready"], "unknown option for cutover: --ready"],
    [["healthcheck", "--dry-run"], "unknown option for healthcheck: --dry-run"],
    [["cutover", "now"], "cutover takes no arguments"],
    [["cutover", "--dry-run=true"], "unknown option for cutover: --dry-run=true"],
    [["dlq"], "dlq needs an action: list, show, replay or purge"],
    [["dlq", "peek"], "unknown dlq action: peek"],
    [["dlq", "list", "--yes"], "--yes is not an option of dlq list"],
    [["dlq", "replay", "--json"], "--json is not an option of dlq replay"],
    [["dlq", "replay", "--yes"], "--yes is not an option of dlq replay"],
    [["dlq", "list", "--match", "x"], "--match is not an option of dlq list"],
    [["dlq", "list", "extra"], "dlq list takes no arguments, got: extra"],
    [["dlq", "show"], "dlq show takes one message number, got: none"],
    [["dlq", "show", "1", "2"], "dlq show takes one message number, got: 1 2"],
    [["dlq", "show", "0"], "the message number must be a whole number of at least 1, got: 0"],
    [["dlq", "show", "two"], "the message number must be a whole number of at least 1, got: two"],
    [["dlq", "replay", "--limit"], "--limit needs a value (N)"],
    [["dlq", "replay", "--limit", "-3"], "--limit must be a whole number of at least 1, got: -3"],
    [["dlq", "purge", "--limit", "1.5"], "--limit must be a whole number of at least 1, got: 1.5"],
    [["dlq", "purge", "--yes=true"], "unknown option for dlq: --yes=true"],
    [["dlq", "purge", "--force"], "unknown option for dlq: --force"],
    [["watch", "a.#", "b.#"], "watch takes one pattern, got: a.# b.#"],
    [["watch", "--dry-run"], "unknown option for watch: --dry-run"],
    [["help", "nope"], "unknown command: nope"],
    [["help", "serve", "migrate"], "help takes one command"],
    [["--version", "extra"], "unexpected argument after --version"],
    [["--help", "extra"], "unexpected argument after --help"],
  ])("%p is a usage error", (argv, problem) => {
    const c = parseCommandLine(argv);
    expect(c.kind).toBe("usage-error");
    const text = textOf(argv);
    expect(text).toContain(problem);
    expect(text).toContain("Usage:");
    expect(text).toContain("--help");
  });
});
