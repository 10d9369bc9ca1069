/**
 * Typed access to two AMQPSession methods that exist at run time but are
 * marked @internal in amqp-client 4.1's typings: the shared ops channel and
 * the confirm channel. We need them because `session.queue(name)` caches its
 * handle and never declares again, while topology has to be redeclared
 * after every reconnect (amqp-client.js#249) — a queue may have been deleted
 * with an exclusive owner or by an operator in the meantime.
 */
import type { AMQPChannel } from "@cloudamqp/amqp-client";
import type { BrokerSession } from "./connection.ts";

interface SessionInternals {
  withOpsChannel<T>(fn: (ch: AMQPChannel) => Promise<T>): Promise<T>;
  getConfirmChannel(): Promise<AMQPChannel>;
}

export function withOpsChannel<T>(session: BrokerSession, fn: (ch: AMQPChannel) => Promise<T>): Promise<T> {
  return (session as unknown as SessionInternals).withOpsChannel(fn);
}

export function confirmChannel(session: BrokerSession): Promise<AMQPChannel> {
  return (session as unknown as SessionInternals).getConfirmChannel();
}
