/**
 * One JSON object per line on stdout: time, level, msg, then the fields that
 * apply (routing_key, server_id, session_id, error, …). Shaped like
 * `Pick<Console, "debug" | "info" | "warn" | "error">` so it can be handed to
 * libraries (amqp-client) that log through a console-like object.
 */
import process from "node:process";
import { setImmediate } from "node:timers";

export type Level = "debug" | "info" | "warn" | "error";
export type Fields = Record<string, unknown>;
export type Logger = {
  [L in Level]: (msg: string, ...rest: unknown[]) => void;
} & { child(fields: Fields): Logger; enabled(level: Level): boolean };

const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface LoggerOptions {
  level?: Level;
  /** Where lines go; one call per line, newline included. */
  write?: (line: string) => void;
  now?: () => Date;
}

export function createLogger(options: LoggerOptions = {}, base: Fields = {}): Logger {
  const min = ORDER[options.level ?? "info"];
  const write = options.write ?? stdoutLines();
  const time = options.now ? () => options.now!().toISOString() : isoNow;
  const emit = (level: Level, msg: string, rest: unknown[]) => {
    if (ORDER[level] < min) return;
    const entry: Fields = { time: time(), level, msg, ...base };
    for (const extra of rest) {
      if (extra instanceof Error) entry.error = extra.message;
      else if (extra !== null && typeof extra === "object") {
        // Errors become their message; a plain loop, not entries(): this runs for every line.
        for (const k in extra) {
          const v = (extra as Fields)[k];
          entry[k] = v instanceof Error ? v.message : v;
        }
      } else if (extra !== undefined) entry.detail = entry.detail === undefined ? String(extra) : `${entry.detail} ${String(extra)}`;
    }
    write(safeStringify(entry) + "\n");
  };
  return {
    debug: (msg, ...rest) => emit("debug", msg, rest),
    info: (msg, ...rest) => emit("info", msg, rest),
    warn: (msg, ...rest) => emit("warn", msg, rest),
    error: (msg, ...rest) => emit("error", msg, rest),
    child: (fields) => createLogger(options, { ...base, ...fields }),
    enabled: (level) => ORDER[level] >= min,
  };
}

/**
 * `write` for lines that arrive in bursts: the lines of one turn of the
 * event loop go out as one write (or sooner, at 64 KiB), and whatever is
 * pending when the process exits is written then. A write per line was a
 * system call per line: a tenth of the event consumer's CPU at info level
 * (bench:events profile, docs/performance.md).
 */
export function batchedWriter(write: (chunk: string) => void): (line: string) => void {
  let pending = "";
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    if (pending === "") return;
    const out = pending;
    pending = "";
    write(out);
  };
  process.on("exit", flush);
  return (line) => {
    pending += line;
    if (pending.length >= 64 * 1024) flush();
    else if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  };
}

// One for the whole process, so every logger's lines stay in the order written.
let stdout: ((line: string) => void) | undefined;
const stdoutLines = () => (stdout ??= batchedWriter((chunk) => void process.stdout.write(chunk)));

// The time string is made once per millisecond, not once per line: a busy
// consumer writes several lines in the same millisecond.
let lastMs = -1;
let lastIso = "";
function isoNow(): string {
  const ms = Date.now();
  if (ms !== lastMs) (lastMs = ms), (lastIso = new Date(ms).toISOString());
  return lastIso;
}

/**
 * JSON.stringify that writes bigints as numbers when safe, else as strings,
 * instead of throwing. A replacer makes every line several times slower to
 * write, and bigints are rare (ids from the database): it is used only when
 * the plain call throws.
 */
function safeStringify(entry: Fields): string {
  try {
    return JSON.stringify(entry);
  } catch {
    return JSON.stringify(entry, (_k, v) => (typeof v === "bigint" ? (Number.isSafeInteger(Number(v)) ? Number(v) : v.toString()) : v));
  }
}

/** A logger that drops everything (tests, benchmarks). */
export const silentLogger: Logger = createLogger({ level: "error", write: () => {} });
