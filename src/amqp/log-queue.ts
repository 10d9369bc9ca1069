/**
 * The log ingest's broker side: this process's own queue bound to
 * `logs.session.#` on `manman`, so any number of replicas each see every
 * line (the deployed log processor shared one queue per session, so
 * replicas split the lines between them).
 *
 * `#`, as the archive's queue is bound, not `*`: the topic exchange then
 * walks one path of its trie for both queues instead of two. Measured with
 * RabbitMQ 3.10's reductions (bench/archive-broker.ts), the publisher's
 * channel does 447–461 a line with two `#` bindings, 560–593 with a `#` and
 * a `*`: ~20% of the routing, ~5–10% of all the broker's work a line. The
 * live view also sees exactly the lines the archive keeps (a key with more
 * words than `logs.session.<id>` included; the line's own session_id is
 * what counts, not the key).
 *
 * The queue is bounded (x-max-length, dropping the oldest) and lines expire
 * after LOG_BUFFER_TTL, because a line nobody has streamed by then would be
 * out of the buffer anyway. It is consumed without acknowledgements: log
 * lines are loss-tolerant (CONTRACT §1), and the broker keeps what TCP
 * cannot take in the bounded queue. The broker drops the oldest without a
 * word, so `depth()` reads how full it is (the ingest's tick publishes it,
 * and says when it is full: log-pipeline/ingest-metrics.ts).
 *
 * amqp-client recovers consumers but not topology (amqp-client.js#249), and
 * an exclusive queue dies with its connection: `reattach()` declares
 * everything again; the owner calls it after every reconnect and whenever
 * `attached()` says the consumer is gone.
 */
import { hostname } from "node:os";
import type { AMQPChannel, AMQPMessage } from "@cloudamqp/amqp-client";
import type { BrokerSession } from "./connection.ts";
import { openOwnChannel, withOpsChannel } from "./private-api.ts";
import { errorMessage } from "../util/errors.ts";
import type { Logger } from "../log.ts";

export const LOG_EXCHANGE = "manman";
export const LOG_BINDING = "logs.session.#";

export interface LogQueueOptions {
  session: BrokerSession;
  /** Queue arguments: LOG_QUEUE_MAX_LENGTH and LOG_BUFFER_TTL. */
  maxLength: number;
  messageTtlMs: number;
  /** Called synchronously for every delivery; must not throw. */
  onMessage: (msg: AMQPMessage) => void;
  logger: Logger;
  /** Once aborted, nothing is declared again. */
  signal: AbortSignal;
}

export interface LogQueue {
  /** This process's queue, as shown in the RabbitMQ management UI. */
  readonly name: string;
  /** True while the queue is declared, bound and consumed. */
  attached(): boolean;
  /** Declares, binds and consumes again unless attached; one attempt at a time. Never throws. */
  reattach(): Promise<void>;
  /** Lines the broker holds for this process, not yet sent to it; undefined when not attached or not answered. Never throws. */
  depth(): Promise<number | undefined>;
  /** Waits for an attempt in progress, then closes the channel (cancelling the consumer). */
  close(): Promise<void>;
}

/** A name of its own per process: `manman-processor.` is what cutover recognises as ours. */
export function logQueueName(): string {
  return `manman-processor.logs.${hostname()}.${crypto.randomUUID().slice(0, 8)}`;
}

/** The queue, not yet declared: call `reattach()` to declare and consume it. */
export function logQueue(options: LogQueueOptions, name: string = logQueueName()): LogQueue {
  const { session, signal, logger: log } = options;
  let channel: AMQPChannel | undefined;
  let attaching: Promise<void> | undefined;

  async function attach(): Promise<void> {
    if (signal.aborted || session.closed) return;
    const ch = await openOwnChannel(session);
    ch.onerror = (reason) => log.warn("log channel closed by the broker; reopening", { reason });
    try {
      await ch.exchangeDeclare(LOG_EXCHANGE, "topic", { durable: true });
      await ch.queueDeclare(name, { durable: false, exclusive: true, autoDelete: true }, {
        "x-max-length": options.maxLength,
        "x-overflow": "drop-head",
        "x-message-ttl": options.messageTtlMs,
      });
      await ch.queueBind(name, LOG_EXCHANGE, LOG_BINDING);
      const consumer = await ch.basicConsume(name, { noAck: true, exclusive: true }, options.onMessage);
      // The broker cancels the consumer when the queue is deleted (an
      // operator, a policy); the channel stays open, so watch the consumer.
      const gone = () => {
        if (channel !== ch || signal.aborted) return;
        channel = undefined;
        if (session.closed) return; // the connection went: onConnect reattaches
        log.warn("the broker cancelled the log consumer; declaring the queue again", { queue: name });
        void ch.close().catch(() => {});
        void reattach();
      };
      consumer.wait().then(gone, gone);
    } catch (err) {
      // Don't leave a half-set-up channel behind for every retry.
      if (!ch.closed) await ch.close().catch(() => {});
      throw err;
    }
    channel = ch;
    log.info("consuming session log lines", { queue: name, binding: LOG_BINDING });
  }

  const attached = () => channel !== undefined && !channel.closed && !session.closed;

  function reattach(): Promise<void> {
    if (attaching) return attaching;
    if (attached() || signal.aborted) return Promise.resolve();
    attaching = attach()
      .catch((err) => log.error("could not consume session log lines; retrying", { queue: name, error: errorMessage(err) }))
      .finally(() => (attaching = undefined));
    return attaching;
  }

  async function depth(): Promise<number | undefined> {
    if (!attached()) return undefined;
    try {
      // Passive, on the shared ops channel: a queue gone meanwhile closes
      // that channel (reopened on next use), never the consumer's.
      return (await withOpsChannel(session, (ch) => ch.queueDeclare(name, { passive: true }))).messageCount;
    } catch {
      return undefined;
    }
  }

  async function close(): Promise<void> {
    await attaching;
    const ch = channel;
    channel = undefined;
    if (ch && !ch.closed) await ch.close().catch(() => {});
  }

  return { name, attached, reattach, depth, close };
}
