/**
 * Reading a queue from its head without losing or reordering it (the dlq
 * commands). AMQP has no "peek", and a message nacked with requeue goes back
 * to its place at the head, where it is delivered again at once: reading by
 * get-and-requeue either loops or shows the same message for ever. So:
 *
 * - a channel of our own asks the queue's depth N (a passive declare), sets
 *   its prefetch to N and consumes with manual acks: the broker hands over
 *   the first N messages in queue order and holds them for us;
 * - only those N are taken; anything delivered after them (a message
 *   dead-lettered meanwhile, a replayed one coming back) is held untouched
 *   and goes back with the rest (no basic.cancel once N have come:
 *   amqp-client 4.1 was seen to hang the channel.close that followed one
 *   still in flight, about one run in three);
 * - a message is removed only by an ack, sent after whatever had to happen
 *   first (a confirmed republish);
 * - closing the channel (or the process dying, which closes it) returns
 *   every message not acked to the queue, in its original order (RabbitMQ
 *   keeps publication order across requeues since 2.7).
 *
 * Republishing happens on the same channel, in confirm mode and one message
 * at a time, so the broker sees "ack k" before "publish k+1": when the
 * process is killed, at most the one message in flight has been published
 * and not yet removed (a duplicate downstream, never a loss).
 */
import type { AMQPChannel, AMQPProperties } from "@cloudamqp/amqp-client";
import type { BrokerSession } from "./connection.ts";
import { openOwnChannel } from "./private-api.ts";
import { settlesWithin, withTimeout } from "../util/timeout.ts";

export interface HeldDelivery {
  tag: number;
  exchange: string;
  routingKey: string;
  properties: AMQPProperties;
  body: Uint8Array;
}

export interface QueueReader {
  /** Messages in the queue when it was opened, and consumers then. */
  readonly depth: number;
  readonly consumers: number;
  /** The next message from the head, held; undefined once the taken ones are done, or when none came for `idleMs`. Throws when the channel closed. */
  next(): Promise<HeldDelivery | undefined>;
  /** Removes a held message from the queue (ack). */
  remove(tag: number): Promise<void>;
  /** Publishes with a confirm, mandatory: "unroutable" when no queue took it (the broker returned it). */
  publish(exchange: string, routingKey: string, body: Uint8Array, properties: AMQPProperties): Promise<"routed" | "unroutable">;
  /** Gives every held message not removed back to the queue, in order. */
  close(): Promise<void>;
}

export interface QueueReaderOptions {
  /** Take at most this many from the head (default: the whole depth). */
  take?: number;
  idleMs?: number;
  confirmTimeoutMs?: number;
}

// The broker streams held messages within milliseconds; 2 s without one
// while fewer than counted have come means the rest left the queue (expired
// at the head, or went to another consumer).
const IDLE_MS = 2_000;
// As the service's publisher (amqp/publisher.ts): a healthy broker confirms
// in milliseconds.
const CONFIRM_TIMEOUT_MS = 10_000;
// A channel.close is answered in milliseconds.
const CLOSE_WITHIN_MS = 5_000;
// basic.qos's prefetch-count is a 16-bit field; 0 means no limit.
const MAX_PREFETCH = 65_535;

export class QueueMissingError extends Error {
  override name = "QueueMissingError";
}

export async function openQueueReader(session: BrokerSession, queue: string, options: QueueReaderOptions = {}): Promise<QueueReader> {
  const ch: AMQPChannel = await openOwnChannel(session);
  let closedBecause: string | undefined;
  let wake: (() => void) | undefined;
  ch.onerror = (reason) => {
    closedBecause = reason;
    wake?.();
  };
  let ok;
  try {
    ok = await ch.queueDeclare(queue, { passive: true });
  } catch (err) {
    if (/NOT_FOUND|\b404\b/.test(String(err))) throw new QueueMissingError(`queue ${queue} does not exist`);
    throw err;
  }
  const want = Math.min(ok.messageCount, options.take ?? ok.messageCount);
  const buffer: HeldDelivery[] = [];
  let received = 0;
  let handedOut = 0;
  let returned = false;
  ch.onReturn = () => void (returned = true);
  await ch.confirmSelect();
  if (want > 0) {
    await ch.basicQos(want <= MAX_PREFETCH ? want : 0);
    await ch.basicConsume(queue, { noAck: false }, (m) => {
      if (received >= want) return; // past the counted ones: held, returned at close
      received++;
      buffer.push({ tag: m.deliveryTag, exchange: m.exchange, routingKey: m.routingKey, properties: m.properties, body: m.body ?? new Uint8Array() });
      wake?.();
    });
  }
  const idleMs = options.idleMs ?? IDLE_MS;
  const gone = () => new Error(`the channel to ${queue} closed: ${closedBecause ?? "connection lost"}; messages not yet removed are back in the queue`);

  return {
    depth: ok.messageCount,
    consumers: ok.consumerCount,
    async next() {
      for (;;) {
        if (closedBecause !== undefined || ch.closed) throw gone();
        const d = buffer.shift();
        if (d) {
          handedOut++;
          return d;
        }
        if (handedOut >= want) return undefined;
        const arrived = await new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => resolve(false), idleMs);
          wake = () => {
            clearTimeout(timer);
            resolve(true);
          };
        });
        wake = undefined;
        if (!arrived && buffer.length === 0 && closedBecause === undefined && !ch.closed) return undefined;
      }
    },
    async remove(tag) {
      if (closedBecause !== undefined || ch.closed) throw gone();
      await ch.basicAck(tag);
    },
    async publish(exchange, routingKey, body, properties) {
      returned = false;
      const confirmTimeoutMs = options.confirmTimeoutMs ?? CONFIRM_TIMEOUT_MS;
      await withTimeout(ch.basicPublish(exchange, routingKey, body, properties, true), confirmTimeoutMs, `no publisher confirm within ${confirmTimeoutMs} ms`);
      // The broker sends basic.return before the confirm of an unroutable
      // mandatory message, and we publish one at a time.
      return returned ? "unroutable" : "routed";
    },
    async close() {
      // A close the broker never answers (a connection dying meanwhile) is
      // given up on: the connection's end returns the messages all the same.
      if (!ch.closed) await settlesWithin(ch.close(), CLOSE_WITHIN_MS);
    },
  };
}
