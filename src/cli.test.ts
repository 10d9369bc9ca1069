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
      for (const cmd of ["serve", "migrate", "healthcheck", "cutover [--dry-run]", "--version"]) expect(text).toContain(cmd);
      for (const name of everyVariable) expect(text).toContain(name);
    }
  });

  test("each command's help lists every environment variable with its default", () => {
    for (const cmd of ["serve", "migrate", "healthcheck", "cutover"]) {
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
});

describe("usage errors", () => {
  test.each([
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
