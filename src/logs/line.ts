/**
 * The one log line type, from the broker to every stream and the viewer,
 * and what one costs in memory. Pure.
 */

export interface LogLine {
  readonly sessionId: number;
  /** Per session, starting at 1, +1 per line (given by the session's ring). */
  readonly seq: number;
  /** Unix milliseconds, as published. */
  readonly timestamp: number;
  /** stdout, stderr or host as published (CONTRACT §2). */
  readonly source: string;
  readonly message: string;
}

/** A decoded line before the hub numbers it: what the host manager sent, message possibly cut. */
export interface IncomingLine extends Omit<LogLine, "seq"> {
  /** True when `message` was cut to the size limit (and carries the marker). */
  readonly truncated: boolean;
}

// Estimated heap cost of one line beyond its text (object header, five
// fields, a slot in a ring or queue). It only needs to err on the safe side.
export const LINE_OVERHEAD_BYTES = 96;
export const lineBytes = (l: LogLine): number => LINE_OVERHEAD_BYTES + 2 * l.message.length;
