/**
 * What becomes of a message whose work did not go through. Pure: the work
 * loop (event-pipeline/work.ts) gathers the facts — what kind of failure,
 * how many tries — and does what this decides.
 *
 * Failures, by whose fault they are:
 * - the message's (values the database refuses): dead-lettered at once;
 * - the database's (outage): held, waiting for it to answer, then run again
 *   without counting the try;
 * - the connection's (killed or reset under a statement while the database
 *   still answers): run again after a short wait without counting, up to
 *   CONNECTION_LOSS_RETRIES times;
 * - the moment's (a statement timeout, a deadlock): retried with backoff up
 *   to MAX_RETRIES, then dead-lettered;
 * - the order's (pending -> running before its predecessor): tried again
 *   after a short wait for FORWARD_SKIP_RETRY_SECONDS, then dead-lettered.
 */
import { backoff } from "../util/time.ts";

// Retries of a message's own transient failure: 100 ms doubling, capped at
// 5 s, with jitter; with MAX_RETRIES=5 a message gives up after ~3 s of
// waiting plus its attempts, far below the broker's 30 min consumer_timeout.
const RETRY_BASE_MS = 100;
const RETRY_CAP_MS = 5000;
// A statement whose connection was lost (killed, reset) while the database
// still answers is run again without counting as the message's retry, up to
// this many times; every statement pipelined on a killed connection fails
// at once, and counting those would dead-letter innocent messages.
export const CONNECTION_LOSS_RETRIES = 10;
const CONNECTION_LOSS_BASE_MS = 20;
const CONNECTION_LOSS_CAP_MS = 1000;
// An early pending -> running is tried again after 100 ms doubling to 1 s:
// its predecessor usually lands within milliseconds, and a 1 s cap gives
// several tries within the default 5 s window.
export const EARLY_RETRY_BASE_MS = 100;
const EARLY_RETRY_CAP_MS = 1000;

export type FailureKind =
  /** The database refused the message's values (data exception, constraint): retrying cannot help. */
  | "bad_values"
  /** Not yet known whether the database answers. */
  | "unexplained"
  /** The database did not answer; the wait for it to come back is over. */
  | "outage_over"
  /** The database answers; the statement's connection was lost under it. */
  | "connection_lost"
  /** The database answers; the statement itself failed (timeout, deadlock). */
  | "statement_failed";

export interface Failure {
  kind: FailureKind;
  /** The error's message, for the dead-letter reason. */
  error: string;
  /** Tries that count as the message's own, this one included. */
  attempts: number;
  /** Runs again already made because a connection was lost. */
  connectionLosses: number;
}

export type RetryDecision =
  /** The message's own transient failure: try again after `afterMs`; this try counts. */
  | { kind: "retry"; afterMs: number }
  /** Not the message's fault: run again after `afterMs` without counting this try. */
  | { kind: "run_again"; afterMs: number; cause: "outage" | "connection_lost" }
  /** Find out whether the database answers (waiting out an outage), then decide again. */
  | { kind: "wait_for_database" }
  /** Can never succeed, or failed too often. */
  | { kind: "dead_letter"; reason: string };

export function decideRetry(f: Failure, maxRetries: number, random: () => number = Math.random): RetryDecision {
  if (f.kind === "bad_values") return { kind: "dead_letter", reason: `database refused the values: ${f.error}` };
  if (f.kind === "unexplained") return { kind: "wait_for_database" };
  if (f.kind === "outage_over") return { kind: "run_again", afterMs: 0, cause: "outage" };
  if (f.kind === "connection_lost" && f.connectionLosses < CONNECTION_LOSS_RETRIES) {
    return { kind: "run_again", afterMs: backoff(f.connectionLosses + 1, CONNECTION_LOSS_BASE_MS, CONNECTION_LOSS_CAP_MS, random), cause: "connection_lost" };
  }
  if (f.attempts > maxRetries) return { kind: "dead_letter", reason: `failed ${f.attempts} times: ${f.error}` };
  return { kind: "retry", afterMs: backoff(f.attempts, RETRY_BASE_MS, RETRY_CAP_MS, random) };
}

/** How long a message has been waiting for its predecessor, across its tries. */
export interface EarlyWait {
  since: number;
  tries: number;
}

export type EarlyDecision = { kind: "retry"; afterMs: number } | { kind: "dead_letter"; reason: string };

/**
 * An early message (`detail` says which move it skips) is tried again
 * while its window lasts, never waiting past the window; then it is
 * dead-lettered, saying how long it waited and how often it was tried.
 */
export function decideEarly(wait: EarlyWait, now: number, windowMs: number, detail: string, random: () => number = Math.random): EarlyDecision {
  const waited = now - wait.since;
  if (waited >= windowMs) {
    return { kind: "dead_letter", reason: `${detail}: its predecessor did not arrive within ${(waited / 1000).toFixed(1)} s (${wait.tries} tries)` };
  }
  return { kind: "retry", afterMs: Math.min(backoff(wait.tries + 1, EARLY_RETRY_BASE_MS, EARLY_RETRY_CAP_MS, random), windowMs) };
}
