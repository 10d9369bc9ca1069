/**
 * What to do with a promise rejection nobody handled. Drivers have known
 * traps: when a connection dies, postgres.js and amqp-client reject promises
 * that no caller awaits (see PITFALLS.md). Those are named here, logged and
 * counted, and the process carries on: every piece of work is acked only
 * once done, and the connection's own recovery takes over. Anything else is
 * a bug nobody foresaw; carrying on could leave a component half-dead, so the
 * process drains and exits 1, and its supervisor starts a fresh one.
 */
import { isConnectionLoss } from "./db/errors.ts";

export type StrayVerdict = "known_driver_trap" | "unexpected";

export function judgeStrayRejection(reason: unknown): StrayVerdict {
  // postgres.js: a query on a connection that died (CONNECTION_*, ECONNRESET, class 08, …).
  if (isConnectionLoss(reason)) return "known_driver_trap";
  // amqp-client rejects every pending operation of a connection or channel
  // that closed with AMQPError; the session reconnects by itself.
  if (reason instanceof Error && reason.name === "AMQPError") return "known_driver_trap";
  return "unexpected";
}
