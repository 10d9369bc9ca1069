/**
 * Cursors of ReadSessionLogs (proto/manman/processor/v1/log_history.proto).
 * Every archived line has a unique position: (timestamp, log_id of the
 * object holding it, index of the line in that object). Ordered that way,
 * the lines of a session form one total order even when thousands share a
 * millisecond or a late part of a minute overlaps the first. A cursor is a
 * position; FORWARD reads lines strictly after it, BACKWARD strictly before,
 * so pages neither skip nor repeat a line, and an object archived later
 * (higher log_id) takes its own place instead of shifting pages already read.
 * Pure.
 */

export interface LinePosition {
  /** Unix ms. */
  timestamp: number;
  /** log_references.log_id (≥ 1 for real objects). */
  logId: number;
  /** 0-based line index in the object. */
  index: number;
}

export function comparePositions(a: LinePosition, b: LinePosition): number {
  return a.timestamp - b.timestamp || a.logId - b.logId || a.index - b.index;
}

/**
 * The boundary just before every line at `ms`: log_id 0 is never a real
 * row's, so FORWARD from it starts at the first line at or after `ms`, and
 * BACKWARD from it ends at the last line before `ms`.
 */
export function timeBoundary(ms: number): LinePosition {
  return { timestamp: ms, logId: 0, index: 0 };
}

// Versioned so the encoding can change without misreading old cursors, and
// base64url so clients treat it as the opaque token the proto says it is.
const PREFIX = "v1.";
const BODY = /^v1\.(-?\d{1,16})\.(\d{1,16})\.(\d{1,16})$/;

export function encodeCursor(p: LinePosition): string {
  return btoa(`${PREFIX}${p.timestamp}.${p.logId}.${p.index}`).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/** The position in a cursor; null for anything not made by encodeCursor (INVALID_ARGUMENT). */
export function decodeCursor(cursor: string): LinePosition | null {
  if (cursor.length > 100 || !/^[A-Za-z0-9_-]*$/.test(cursor)) return null;
  let text: string;
  try {
    text = atob(cursor.replaceAll("-", "+").replaceAll("_", "/"));
  } catch {
    return null;
  }
  const m = BODY.exec(text);
  if (!m) return null;
  const p = { timestamp: Number(m[1]), logId: Number(m[2]), index: Number(m[3]) };
  return Number.isSafeInteger(p.timestamp) && Number.isSafeInteger(p.logId) && Number.isSafeInteger(p.index) ? p : null;
}
