/**
 * One session log line as host managers publish it (CONTRACT §2, routing key
 * `logs.session.<id>`), decoded with valibot. Pure: bytes in, a line or a
 * reason out. Unknown fields are ignored; a missing or mistyped field makes
 * the message malformed (counted and skipped by the ingest, never fatal).
 */
import * as v from "valibot";
import { errorMessage } from "../util/errors.ts";
import type { IncomingLine } from "./line.ts";

/** Ids are BIGSERIAL; JSON numbers beyond 2^53 would lose digits, so refuse them. */
const id = v.pipe(v.number("must be a number"), v.safeInteger("must be a whole number"), v.minValue(1, "must be positive"));

export const LOG_SOURCES = ["stdout", "stderr", "host"] as const;

export const LogLineMessage = v.looseObject({
  session_id: id,
  // Unix milliseconds; 0 and negatives are accepted as published (a wrong
  // host clock is not a reason to lose the line).
  timestamp: v.pipe(v.number("must be a number"), v.safeInteger("must be whole milliseconds")),
  source: v.picklist(LOG_SOURCES, `must be one of ${LOG_SOURCES.join(", ")}`),
  message: v.string("must be a string"),
});

export type DecodedLine = { ok: true; line: IncomingLine } | { ok: false; reason: string };

// Not fatal: a stray invalid byte becomes U+FFFD and the line still shows.
const utf8 = new TextDecoder("utf-8");

export function decodeLogLine(body: Uint8Array | null, maxMessageBytes: number): DecodedLine {
  let json: unknown;
  try {
    json = JSON.parse(utf8.decode(body ?? new Uint8Array()));
  } catch (err) {
    return { ok: false, reason: `body is not JSON: ${errorMessage(err)}` };
  }
  const parsed = v.safeParse(LogLineMessage, json);
  if (!parsed.success) {
    const detail = parsed.issues.map((i) => `${v.getDotPath(i) ?? "body"}: ${i.message}`).join("; ");
    return { ok: false, reason: `invalid log line: ${detail}` };
  }
  const m = parsed.output;
  const cut = truncateUtf8(m.message, maxMessageBytes);
  return {
    ok: true,
    line: { sessionId: m.session_id, timestamp: m.timestamp, source: m.source, message: cut.text, truncated: cut.truncated },
  };
}

/** Appended to a cut line so a reader knows it is not the whole line. */
export function truncationMarker(droppedBytes: number): string {
  return ` …[truncated ${droppedBytes} bytes]`;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8");

/**
 * Cuts `text` so that it plus the marker fits in `maxBytes` of UTF-8, on a
 * character boundary. Most lines are short: a string of n UTF-16 units is at
 * most 3n UTF-8 bytes, so those skip the encoding entirely.
 */
export function truncateUtf8(text: string, maxBytes: number): { text: string; truncated: boolean } {
  if (text.length * 3 <= maxBytes) return { text, truncated: false };
  const bytes = encoder.encode(text);
  if (bytes.length <= maxBytes) return { text, truncated: false };
  // The marker's length depends on the dropped count (a few digits); 40
  // bytes covers " …[truncated <up to 16 digits> bytes]".
  let keep = Math.max(0, maxBytes - 40);
  // Back up to the start of a UTF-8 character (continuation bytes are 10xxxxxx).
  while (keep > 0 && (bytes[keep] & 0xc0) === 0x80) keep--;
  const head = decoder.decode(bytes.subarray(0, keep));
  return { text: head + truncationMarker(bytes.length - keep), truncated: true };
}
