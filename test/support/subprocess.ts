/** Runs the service as a real process (`bun src/main.ts`), for signal tests. */
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";

export interface ServiceProcess {
  child: ChildProcess;
  lines: Record<string, unknown>[];
  exited: Promise<number | null>;
  /** Resolves with the HTTP port once the service logs that it is ready. */
  ready: Promise<number>;
}

const ROOT = join(import.meta.dir, "..", "..");

export function spawnService(env: Record<string, string>, args: string[] = []): ServiceProcess {
  const child = spawn(process.execPath, [join(ROOT, "src/main.ts"), ...args], {
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: Record<string, unknown>[] = [];
  let resolveReady!: (port: number) => void;
  const ready = new Promise<number>((r) => (resolveReady = r));
  let buffer = "";
  child.stdout!.on("data", (chunk: Buffer) => {
    buffer += chunk.toString();
    let nl: number;
    while ((nl = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      try {
        const entry = JSON.parse(line);
        lines.push(entry);
        if (entry.msg === "manman-processor ready") resolveReady(entry.http_port);
      } catch {
        lines.push({ raw: line });
      }
      if (process.env.TEST_VERBOSE) process.stdout.write(line + "\n");
    }
  });
  child.stderr!.on("data", (chunk: Buffer) => lines.push({ stderr: chunk.toString() }));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, lines, exited, ready };
}
