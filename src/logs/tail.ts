/**
 * A session's last lines as crashed and lost events carry them (`log_tail`,
 * docs/events.md): each line in the archive's format (CONTRACT §6,
 * `[<RFC 3339 ms>] [<source>] <message>`, line breaks escaped, no trailing
 * newline), cut to at most LOG_TAIL_LINE_BYTES bytes of UTF-8 on a character
 * boundary. Strings rather than objects: a chat bot posts them as they are,
 * and they read the same as the archive the API serves. Pure.
 */
import { formatLine, type ArchivedLine } from "./archive/format.ts";

/** Enough to see why a game server died (its last stack trace or error), small enough for one chat message. */
export const LOG_TAIL_LINES = 20;
/** Per line: 20 × 500 bytes keeps an event body under ~10 KiB, far below any broker or chat limit. */
export const LOG_TAIL_LINE_BYTES = 500;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** `text` cut to at most `maxBytes` bytes of UTF-8, never inside a character. */
export function cutUtf8(text: string, maxBytes: number): string {
  // A UTF-16 code unit is at most 3 UTF-8 bytes: short strings need no encoding.
  if (text.length * 3 <= maxBytes) return text;
  const bytes = encoder.encode(text);
  if (bytes.length <= maxBytes) return text;
  let end = Math.max(0, maxBytes);
  // Back off continuation bytes (10xxxxxx) to the start of the cut character.
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return decoder.decode(bytes.subarray(0, end));
}

/** The newest `maxLines` of `lines` (oldest first), each formatted and cut. */
export function formatLogTail(lines: readonly ArchivedLine[], maxLines = LOG_TAIL_LINES, maxBytes = LOG_TAIL_LINE_BYTES): string[] {
  return lines.slice(Math.max(0, lines.length - maxLines)).map((l) => cutUtf8(formatLine(l).slice(0, -1), maxBytes));
}
