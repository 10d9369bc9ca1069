/**
 * The one place that reaches past amqp-client 4.1's public typings. Three
 * AMQPSession methods exist at run time but are marked @internal:
 *
 * - the shared ops channel and the confirm channel: `session.queue(name)`
 *   caches its handle and never declares again, while topology has to be
 *   redeclared after every reconnect (amqp-client.js#249) — a queue may have
 *   been deleted with an exclusive owner or by an operator in the meantime;
 * - a channel of the current connection that the caller owns, for a
 *   consumer that manages its own recovery (the event consumer, the log
 *   ingest) or a tool that wants a channel to itself (cutover).
 *
 * - the client's socket, whose idle timeout amqp-client sets to exactly one
 *   heartbeat interval (too tight: see connection.ts);
 * - the client's `send` and the session's `stopped`, for the heartbeats
 *   amqp-client does not send on its own (connection.ts).
 *
 * If an upgrade of amqp-client renames them, this file is what breaks.
 */
import type { AMQPChannel, AMQPSession } from "@cloudamqp/amqp-client";

// connection.ts's BrokerSession, named from the library: connection.ts imports this file.
type BrokerSession = AMQPSession;

interface SessionInternals {
  withOpsChannel<T>(fn: (ch: AMQPChannel) => Promise<T>): Promise<T>;
  getConfirmChannel(): Promise<AMQPChannel>;
  openChannel(): Promise<AMQPChannel>;
}

interface ClientInternals {
  socket?: { setTimeout(ms: number): unknown };
  send(bytes: Uint8Array): Promise<void>;
}

function internals(session: BrokerSession): SessionInternals {
  return session as unknown as SessionInternals;
}

export function withOpsChannel<T>(session: BrokerSession, fn: (ch: AMQPChannel) => Promise<T>): Promise<T> {
  return internals(session).withOpsChannel(fn);
}

export function confirmChannel(session: BrokerSession): Promise<AMQPChannel> {
  return internals(session).getConfirmChannel();
}

/** A channel of the session's current connection that the caller owns (and closes). */
export function openOwnChannel(session: BrokerSession): Promise<AMQPChannel> {
  return internals(session).openChannel();
}

/** Sets the idle time after which the client drops its connection (its heartbeat timeout); after each connect. */
export function setIdleTimeout(session: BrokerSession, ms: number): void {
  (session as unknown as { client: ClientInternals }).client.socket?.setTimeout(ms);
}

// An AMQP 0-9-1 heartbeat frame: type 8, channel 0, empty payload, frame end 0xCE.
const HEARTBEAT_FRAME = new Uint8Array([8, 0, 0, 0, 0, 0, 0, 0xce]);

/** Writes one heartbeat frame on the current connection; rejects when there is none. */
export function sendHeartbeat(session: BrokerSession): Promise<void> {
  return (session as unknown as { client: ClientInternals }).client.send(HEARTBEAT_FRAME);
}

/** True once `stop()` was called: the session will not reconnect. */
export function sessionStopped(session: BrokerSession): boolean {
  return (session as unknown as { stopped: boolean }).stopped;
}
