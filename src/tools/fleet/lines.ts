/**
 * The text of a simulated game server's log: what a dedicated server prints
 * while it runs (ANSI-coloured tags, players joining, saves, warnings on
 * stderr), what the host says around it (pulling the image, the container's
 * end), what a crash leaves behind, and a little noise (blank lines, a very
 * long line, non-ASCII, a broken escape), so a viewer or a benchmark sees
 * the kinds of lines real servers send. Pure: the randomness is passed in.
 */
import type { LogSource } from "./messages.ts";

/** A random number in [0, 1). Seeded (mulberry32) so a run can be repeated. */
export type Random = () => number;

export function seededRandom(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const pick = <T>(random: Random, items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
export const between = (random: Random, min: number, max: number): number => min + Math.floor(random() * (max - min + 1));

const RESET = "\x1b[0m";
const c = (code: string, text: string) => `\x1b[${code}m${text}${RESET}`;

const PLAYERS = ["Alice", "Bob", "Chen", "Dagny", "Émile", "Farah", "Gus", "Hiro", "Ines", "Józef"];
const ZONES = ["Meadows", "Black Forest", "Swamp", "Mountain", "Plains", "Ocean"];
const GAMES = ["valheim", "minecraft", "factorio", "terraria", "cs2"];

/** One line of a session's log. */
export interface GeneratedLine {
  source: LogSource;
  message: string;
}

// 1 line in 12 on stderr: enough red in the viewer to notice, as warnings are in real logs.
const STDERR_SHARE = 1 / 12;
// 1 line in 100 is noise: present in every minute of a busy session, rare in the page.
const NOISE_SHARE = 1 / 100;

export function runningLine(random: Random, lineNo: number): GeneratedLine {
  if (random() < NOISE_SHARE) return { source: "stdout", message: noise(random) };
  if (random() < STDERR_SHARE) return { source: "stderr", message: warning(random) };
  return { source: "stdout", message: gameLine(random, lineNo) };
}

function gameLine(random: Random, lineNo: number): string {
  const who = pick(random, PLAYERS);
  switch (Math.floor(random() * 8)) {
    case 0:
      return `${c("33", "[Player]")} ${c("1", who)} joined from 203.0.113.${between(random, 1, 254)}`;
    case 1:
      return `${c("33", "[Player]")} ${who} left (${between(random, 1, 180)} min played)`;
    case 2:
      return `${c("36", "[World]")} Saving world... done in ${c("32", `${between(random, 40, 900)} ms`)}`;
    case 3:
      return `${c("36", "[World]")} Zone ${between(random, -20, 20)},${between(random, -20, 20)} (${pick(random, ZONES)}) loaded`;
    case 4:
      return `${c("35", "[Chat]")} <${who}> ${pick(random, ["gg", "anyone up for the boss?", "brb", "lag?", "nice base :)"])}`;
    case 5:
      return `${c("38;5;245", "[Net]")} tick ${lineNo}: ${between(random, 1, 10)} players, ${between(random, 20, 60)} ms avg`;
    case 6:
      return `${c("38;2;120;200;255", "[Perf]")} fps ${between(random, 28, 62)}, mem ${between(random, 900, 4000)} MB`;
    default:
      return `${c("32", "[Server]")} heartbeat to master list ok (${c("1", "#" + lineNo)})`;
  }
}

function warning(random: Random): string {
  return random() < 0.7
    ? `${c("33", "WARN")} ${pick(random, ["slow tick: 212 ms", "config value 'maxplayers' out of range, using 10", "dropped 3 packets from 198.51.100.7", "save took longer than 2 s"])}`
    : `${c("1;31", "ERROR")} ${pick(random, ["failed to load zone: timeout after 5000 ms", "could not reach master server: connection refused", "mod 'BetterUI' threw NullReferenceException"])}`;
}

function noise(random: Random): string {
  switch (Math.floor(random() * 6)) {
    case 0:
      return "";
    case 1:
      return "x".repeat(between(random, 600, 2000)); // a long line, as a dumped config or base64 blob is
    case 2:
      return "\t\tat Server.Tick()\t(line 412)";
    case 3:
      return "日本語のログ行 — ünïcödé ✓ 🚀";
    case 4:
      return "\x1b[31mred never reset, and a broken escape \x1b[9";
    default:
      return `{"level":"debug","msg":"json from a mod","ok":true}`;
  }
}

/** What the host says while a session starts (the viewer's blue lines); not sent by a real host manager. */
export function startingLines(random: Random, sgcId: number): GeneratedLine[] {
  const game = GAMES[sgcId % GAMES.length]!;
  return [
    { source: "host", message: `pulling image ghcr.io/manman/${game}:${between(random, 1, 9)}.${between(random, 0, 40)}` },
    { source: "host", message: `creating container manman-sgc-${sgcId}` },
    { source: "stdout", message: `${c("1;32", "[Server]")} starting ${game} dedicated server` },
  ];
}

/** The last words of a server that crashes with `exitCode`. */
export function crashLines(random: Random, exitCode: number): GeneratedLine[] {
  return [
    { source: "stderr", message: `${c("1;31", "FATAL")} ${pick(random, ["out of memory", "segmentation fault in libgame.so", "unhandled exception: world file corrupt"])}` },
    { source: "stderr", message: "\tat World.Save() in World.cs:line 88" },
    { source: "host", message: `container exited with code ${exitCode}` },
  ];
}

export function stoppingLines(): GeneratedLine[] {
  return [
    { source: "stdout", message: `${c("32", "[Server]")} shutting down: saving world, kicking players` },
    { source: "host", message: "container stopped" },
  ];
}

/**
 * What a real host manager would publish of `line`: its containers run with
 * a TTY, so every line is stdout, and it never sends host lines (UPSTREAM.md §1).
 */
export function asUpstreamSends(line: GeneratedLine): GeneratedLine | undefined {
  if (line.source === "host") return undefined;
  return line.source === "stdout" ? line : { source: "stdout", message: line.message };
}
