/**
 * Where an archive object lives (CONTRACT §6, upstream's layout):
 * `logs/sgc-<sgc_id>/session-<session_id>/YYYY/MM/DD/HH/mm.log.gz`, UTC,
 * zero-padded. Lines that arrive for a minute already written go to a new
 * object beside it, `mm.<n>.log.gz` (n = 1, 2, …): an object is never
 * rewritten, so a line is never in two objects. Pure.
 */

const MINUTE_MS = 60_000;

/** Start of the UTC minute holding `ms` (floor, so times before 1970 work too). */
export function minuteOf(ms: number): number {
  return Math.floor(ms / MINUTE_MS) * MINUTE_MS;
}

export interface ObjectKeyParts {
  sgcId: number;
  sessionId: number;
  /** Unix ms of the minute's start. */
  minuteMs: number;
  /** 0 for the minute's first object, n ≥ 1 for later parts. */
  part: number;
}

const pad = (n: number, width: number) => String(n).padStart(width, "0");

/** How every key ends; a part's number goes just before it (`mm.log.gz`, `mm.<n>.log.gz`). */
export const KEY_TAIL = ".log.gz";

function checkId(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${name} must be a whole number ≥ 0, got ${value}`);
}

export function objectKey(sgcId: number, sessionId: number, minuteMs: number, part: number): string {
  checkId("sgcId", sgcId);
  checkId("sessionId", sessionId);
  checkId("part", part);
  // A key from a time that is not a minute start would name the wrong object.
  if (minuteOf(minuteMs) !== minuteMs) throw new RangeError(`minuteMs must be the start of a minute, got ${minuteMs}`);
  const d = new Date(minuteMs);
  const year = d.getUTCFullYear();
  if (year < 0 || year > 9999) throw new RangeError(`minuteMs is outside years 0000-9999: ${minuteMs}`);
  const dir = `${pad(year, 4)}/${pad(d.getUTCMonth() + 1, 2)}/${pad(d.getUTCDate(), 2)}/${pad(d.getUTCHours(), 2)}`;
  const name = `${pad(d.getUTCMinutes(), 2)}${part === 0 ? "" : `.${part}`}${KEY_TAIL}`;
  return `logs/sgc-${sgcId}/session-${sessionId}/${dir}/${name}`;
}

const KEY = /^logs\/sgc-(\d+)\/session-(\d+)\/(\d{4})\/(\d{2})\/(\d{2})\/(\d{2})\/(\d{2})(?:\.([1-9]\d*))?\.log\.gz$/;

/** The inverse of objectKey; null for anything else (a key written by some other tool). */
export function parseObjectKey(key: string): ObjectKeyParts | null {
  const m = KEY.exec(key);
  if (!m) return null;
  const [, sgc, session, y, mo, d, h, mi, part] = m;
  const minuteMs = Date.UTC(2000, Number(mo) - 1, Number(d), Number(h), Number(mi));
  const date = new Date(minuteMs);
  // Date.UTC maps years 0-99 to 1900-1999, so build in a leap year (29
  // February stays) and set the real year after.
  date.setUTCFullYear(Number(y));
  const parts = { sgcId: Number(sgc), sessionId: Number(session), minuteMs: date.getTime(), part: part ? Number(part) : 0 };
  if (!Number.isSafeInteger(parts.sgcId) || !Number.isSafeInteger(parts.sessionId) || !Number.isSafeInteger(parts.part)) return null;
  // Reject impossible dates (month 13, 31 February) instead of rolling them over.
  return objectKey(parts.sgcId, parts.sessionId, parts.minuteMs, parts.part) === key ? parts : null;
}
