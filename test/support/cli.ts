/** Runs an operator command (`bun src/main.ts <args>`) as a real process and collects what it printed. */
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..", "..");
export const MAIN = join(ROOT, "src/main.ts");
// Longer than any command here should take (the slowest waits 10 s for a missing broker), shorter than a test's 60 s.
const HANG_MS = 30_000;

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** `env` is all the command sees besides PATH and HOME, as in a fresh shell. */
export async function runCli(args: string[], env: Record<string, string>, stdin?: string): Promise<CliResult> {
  const proc = Bun.spawn([process.execPath, MAIN, ...args], {
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...env },
    stdin: stdin === undefined ? "ignore" : new TextEncoder().encode(stdin),
    stdout: "pipe",
    stderr: "pipe",
  });
  // A command that hangs fails its test with status 137 and what it printed, not a bare test timeout.
  const timer = setTimeout(() => proc.kill("SIGKILL"), HANG_MS);
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** Runs the command on a pseudo-terminal (util-linux `script`), typing `typed` after `delayMs`: what an operator at a terminal sees, control characters included. */
export async function runCliOnTerminal(args: string[], env: Record<string, string>, typed = "", delayMs = 0): Promise<CliResult> {
  const quoted = [process.execPath, MAIN, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(" ");
  const proc = Bun.spawn(["script", "-qec", quoted, "/dev/null"], {
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", TERM: "xterm", ...env },
    stdin: "pipe",
    stdout: "pipe",
    stderr: "pipe",
  });
  if (typed) {
    await Bun.sleep(delayMs);
    proc.stdin.write(typed);
    await proc.stdin.flush();
  }
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  proc.stdin.end();
  return { code, stdout, stderr };
}
