/**
 * The text inside an archive object (CONTRACT §6): one line per log message,
 * `[<RFC 3339 UTC with milliseconds>] [<source>] <message>\n`. The ManManV2
 * API hands this text to its UI as it is, so it is written for people and for
 * upstream's reader alike. Pure.
 *
 * Line breaks inside a message. One message must stay one line: a reader
 * that splits on "\n" (the API's UI, `grep`, our own parser) would otherwise
 * see a second message with no header, and Go's line scanner drops a "\r"
 * before "\n". So LF is written as the two characters `\n` and CR as `\r`.
 * To keep that exactly reversible, a backslash is doubled only where it would
 * otherwise be read as the start of one of those escapes: before `n`, `r`,
 * another backslash, LF or CR. Every other character, backslashes in paths
 * like `C:\Games\srv` included, is written unchanged, so nearly every line
 * reads in the API's UI exactly as the game printed it.
 *
 * Telling ours from upstream's. The deployed archiver wrote messages raw
 * (no escaping) with whole-second times (Go's time.RFC3339); we always write
 * milliseconds (toISOString). A line's escaping is therefore known from its
 * timestamp: only lines with exactly three fraction digits and `Z` are
 * unescaped.
 */

export interface ArchivedLine {
  /** Unix milliseconds. */
  timestamp: number;
  source: string;
  message: string;
}

// RFC 3339 has four-digit years: toISOString writes "+010000-…" past 9999
// and throws past ±8.64e15 ms. A host clock that far off is garbage, but the
// line is still kept, with its time clamped into the range every reader takes.
export const MIN_TIMESTAMP = Date.parse("0000-01-01T00:00:00.000Z");
export const MAX_TIMESTAMP = Date.parse("9999-12-31T23:59:59.999Z");

/** `ms` as a whole number inside [MIN_TIMESTAMP, MAX_TIMESTAMP]. */
export function clampTimestamp(ms: number): number {
  if (Number.isNaN(ms)) return 0;
  return Math.min(MAX_TIMESTAMP, Math.max(MIN_TIMESTAMP, Math.trunc(ms)));
}

/** `2026-01-02T15:04:05.123Z`: RFC 3339, UTC, always milliseconds. */
export function formatTimestamp(ms: number): string {
  return new Date(clampTimestamp(ms)).toISOString();
}

const NEEDS_ESCAPE = /[\\\n\r]/;
const ESCAPES = /\\(?=[\\nr\n\r])|\n|\r/g;
const UNESCAPES = /\\([\\nr])/g;

/** The message as one line (see the module comment for the rule). */
export function escapeMessage(message: string): string {
  // Most lines have no backslash or line break: skip the regex replace.
  if (!NEEDS_ESCAPE.test(message)) return message;
  return message.replace(ESCAPES, (c) => (c === "\n" ? "\\n" : c === "\r" ? "\\r" : "\\\\"));
}

export function unescapeMessage(text: string): string {
  if (!text.includes("\\")) return text;
  return text.replace(UNESCAPES, (_, c: string) => (c === "n" ? "\n" : c === "r" ? "\r" : "\\"));
}

/** One archive line, "\n" included. */
export function formatLine(line: ArchivedLine): string {
  return `[${formatTimestamp(line.timestamp)}] [${line.source}] ${escapeMessage(line.message)}\n`;
}

/** The whole text of an object: `formatLine` of each, in the given order. */
export function formatLines(lines: readonly ArchivedLine[]): string {
  let text = "";
  for (const line of lines) text += formatLine(line);
  return text;
}

// `[time] [source] message`. The time is any RFC 3339 form (upstream wrote
// whole seconds, other tools may add an offset); the space after the source
// is optional so a line trimmed by some tool still parses (empty message).
const HEADER = /^\[(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(?:Z|[+-]\d{2}:\d{2}))\] \[([^\]\n]*)\](?: (.*))?$/s;
const OURS = /\.\d{3}Z$/;
// Upstream's archiver joined appended windows with "\n--- APPENDED AT <RFC3339> ---\n".
const APPENDED = /^--- APPENDED AT \S+ ---$/;

/**
 * The lines of an object's text, in order. Reads ours exactly (the inverse
 * of formatLines) and upstream's objects too: second-precision times, their
 * APPENDED markers (skipped, with the blank line the marker brings), and
 * their raw multi-line messages (a line without a header continues the
 * message before it, as it was published). Text before the first header
 * belongs to no message and is left out.
 */
export function parseLines(text: string): ArchivedLine[] {
  const out: ArchivedLine[] = [];
  const rows = text.split("\n");
  // The "\n" that ends the last line leaves one empty string at the end.
  const end = rows.length > 0 && rows[rows.length - 1] === "" ? rows.length - 1 : rows.length;
  for (let i = 0; i < end; i++) {
    const row = rows[i];
    if (APPENDED.test(row)) continue;
    if (row === "" && i + 1 < end && APPENDED.test(rows[i + 1])) continue;
    const m = HEADER.exec(row);
    const timestamp = m ? Date.parse(m[1]) : NaN;
    if (m && !Number.isNaN(timestamp)) {
      const body = m[4] ?? "";
      out.push({ timestamp, source: m[3], message: OURS.test(m[1]) ? unescapeMessage(body) : body });
    } else if (out.length > 0) {
      out[out.length - 1].message += "\n" + row;
    }
  }
  return out;
}
