/**
 * Which database errors are the message's fault (permanent: retrying cannot
 * help) and which are the moment's (transient: retry), told in the core's
 * terms (events/retry.ts). Pure.
 */
import type { FailureKind } from "../events/retry.ts";

export function isPermanentDatabaseError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== "string" || code.length !== 5) return false;
  // Class 22 (data exception: out of range, invalid text) and 23 (integrity
  // constraint) come from the values in the message; class 40 (serialization
  // failure, deadlock) and 57/08/53 (cancel, connection, resources) pass.
  return code.startsWith("22") || code.startsWith("23");
}

// postgres.js's own codes for a connection that failed or went away, and
// the errno codes of a socket that could not connect.
const CLIENT_CONNECTION_CODES = new Set([
  "CONNECTION_CLOSED",
  "CONNECTION_DESTROYED",
  "CONNECTION_ENDED",
  "CONNECT_TIMEOUT",
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
]);

/**
 * The statement failed because its connection did (closed, killed by an
 * administrator, refused), not because of anything about the statement, so
 * running it again on another connection is not the message's retry. (It
 * may or may not have committed; each statement is its own transaction and
 * running it again finds the change made, as a redelivery would.) Class 08
 * is connection exception; 57P01-57P03 are admin shutdown,
 * crash shutdown and "cannot connect now". Pure.
 */
export function isConnectionLoss(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== "string") return false;
  if (CLIENT_CONNECTION_CODES.has(code)) return true;
  return code.length === 5 && (code.startsWith("08") || code === "57P01" || code === "57P02" || code === "57P03");
}

/**
 * The kind of a failed statement for the retry decision. Whether the
 * database answers is known only once it has been asked (DatabaseWatch):
 * until then a failure that is not the values' fault is unexplained.
 */
export function failureKind(err: unknown, databaseAnswers?: boolean): FailureKind {
  if (isPermanentDatabaseError(err)) return "bad_values";
  if (databaseAnswers === undefined) return "unexplained";
  if (!databaseAnswers) return "outage_over";
  return isConnectionLoss(err) ? "connection_lost" : "statement_failed";
}
