/**
 * Log ingest: every process reads every session log line. Each process has
 * its own exclusive queue bound to `logs.session.*` on `manman`, so any
 * number of replicas each see every line (the deployed log processor shared
 * one queue per session, so replicas split the lines between them).
 *
 * The queue is bounded (x-max-length, dropping the oldest) and lines expire
 * after LOG_BUFFER_TTL, because a line nobody has streamed by then would be
 * out of the buffer anyway. It is consumed without acknowledgements: log
 * lines are loss-tolerant (CONTRACT §1), decoding is synchronous, and the
 * broker keeps what TCP cannot take in the bounded queue.
 *
 * amqp-client recovers consumers but not topology (amqp-client.js#249), and
 * an exclusive queue dies with its connection: `reattach()` declares
 * everything again and runs after every reconnect (the composition root
 * calls it from onConnect; a 1 s check does it anyway if nobody does).
 */
import { hostname } from "node:os";
import type { AMQPChannel, AMQPMessage } from "@cloudamqp/amqp-client";
import type { BrokerSession } from "../amqp/connection.ts";
import { errorMessage } from "../util/errors.ts";
import type { Config } from "../config.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import type { LogHub } from "./hub.ts";
import type { LogLine } from "./line.ts";
import { decodeLogLine } from "./decode.ts";

export const LOG_EXCHANGE = "manman";
export const LOG_BINDING = "logs.session.*";

export interface LogIngestOptions {
  session: BrokerSession;
  hub: LogHub;
  config: Pick<Config, "logBufferTtl" | "logLineMaxBytes" | "logQueueMaxLength" | "debugLogOutput">;
  logger: Logger;
  metrics?: Metrics;
  signal: AbortSignal;
  /** Where DEBUG_LOG_OUTPUT echoes lines; default: the logger at info. */
  echo?: (line: LogLine) => void;
}

export interface LogIngest {
  /** This process's queue, as shown in the RabbitMQ management UI. */
  readonly queueName: string;
  /** True while the queue is declared, bound and consumed. */
  attached(): boolean;
  /** Declares, binds and consumes again; call after every reconnect. Never throws. */
  reattach(): Promise<void>;
  /** Lines handed to the hub so far (also counted in metrics). */
  ingested(): number;
  stopped: Promise<void>;
}

// 1 s: how often counters reach /metrics, a lost consumer is re-checked and
// (every SWEEP_EVERY_TICKS) expired buffers are freed. Cheap, and an
// operator sees figures at most a second old.
const TICK_MS = 1000;
const SWEEP_EVERY_TICKS = 5;

/** amqp-client has this method at run time but marks it internal in its typings. */
interface SessionInternals {
  openChannel(): Promise<AMQPChannel>;
}

// The ingest started on each broker session, so an onConnect hook written
// before the ingest exists can still reach it (see reattachLogIngest).
const ingestOf = new WeakMap<BrokerSession, LogIngest>();

/**
 * For the broker's onConnect hook: declares the log queue again after a
 * reconnect. A no-op on the first connect, before the ingest has started.
 */
export async function reattachLogIngest(session: BrokerSession): Promise<void> {
  await ingestOf.get(session)?.reattach();
}

export async function startLogIngest(options: LogIngestOptions): Promise<LogIngest> {
  const { session, hub, config, metrics, signal } = options;
  const log = options.logger.child({ component: "log_ingest" });
  const queueName = `manman-processor.logs.${hostname()}.${crypto.randomUUID().slice(0, 8)}`;
  const echo = config.debugLogOutput
    ? (options.echo ?? ((l: LogLine) => log.info("session log line", { session_id: l.sessionId, sequence_number: l.seq, source: l.source, message: l.message })))
    : undefined;

  let channel: AMQPChannel | undefined;
  let attaching: Promise<void> | undefined;
  // Counted locally and flushed each tick: a Map lookup per line would cost
  // more than the line itself at 50,000 lines/s.
  let ingested = 0;
  let pending = { ingested: 0, truncated: 0, malformed: 0, failed: 0 };
  let lastMalformed: { reason: string; routingKey: string } | undefined;
  let suppressed = 0;
  let malformedLoggedAt = 0;

  const onMessage = (msg: AMQPMessage) => {
    const r = decodeLogLine(msg.body, config.logLineMaxBytes);
    if (!r.ok) {
      pending.malformed++;
      // At most one warning per second, so a flood of bad messages cannot
      // flood the log; the rest are counted and summed in the next one.
      const now = Date.now();
      if (now - malformedLoggedAt >= TICK_MS) {
        log.warn("skipped a malformed log line", { routing_key: msg.routingKey, reason: r.reason, also_skipped_since_last: suppressed });
        malformedLoggedAt = now;
        suppressed = 0;
      } else {
        suppressed++;
        lastMalformed = { reason: r.reason, routingKey: msg.routingKey };
      }
      return;
    }
    if (r.line.truncated) pending.truncated++;
    try {
      const line = hub.append(r.line);
      ingested++;
      pending.ingested++;
      echo?.(line);
    } catch (err) {
      // Not expected; but a throw here would reach the AMQP frame parser.
      pending.failed++;
      log.error("could not buffer a log line", { routing_key: msg.routingKey, error: errorMessage(err) });
    }
  };

  async function attach(): Promise<void> {
    if (signal.aborted || session.closed) return;
    const ch = await (session as unknown as SessionInternals).openChannel();
    ch.onerror = (reason) => log.warn("log channel closed by the broker; reopening", { reason });
    try {
      await ch.exchangeDeclare(LOG_EXCHANGE, "topic", { durable: true });
      await ch.queueDeclare(queueName, { durable: false, exclusive: true, autoDelete: true }, {
        "x-max-length": config.logQueueMaxLength,
        "x-overflow": "drop-head",
        "x-message-ttl": config.logBufferTtl * 1000,
      });
      await ch.queueBind(queueName, LOG_EXCHANGE, LOG_BINDING);
      const consumer = await ch.basicConsume(queueName, { noAck: true, exclusive: true }, onMessage);
      // The broker cancels the consumer when the queue is deleted (an
      // operator, a policy); the channel stays open, so watch the consumer.
      const gone = () => {
        if (channel !== ch || signal.aborted) return;
        channel = undefined;
        if (session.closed) return; // the connection went: onConnect reattaches
        log.warn("the broker cancelled the log consumer; declaring the queue again", { queue: queueName });
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
    log.info("consuming session log lines", { queue: queueName, binding: LOG_BINDING });
  }

  const attached = () => channel !== undefined && !channel.closed && !session.closed;

  function reattach(): Promise<void> {
    if (attaching) return attaching;
    if (attached() || signal.aborted) return Promise.resolve();
    attaching = attach()
      .catch((err) => log.error("could not consume session log lines; retrying", { queue: queueName, error: errorMessage(err) }))
      .finally(() => (attaching = undefined));
    return attaching;
  }

  function flush(): void {
    if (!metrics) return;
    const p = pending;
    pending = { ingested: 0, truncated: 0, malformed: 0, failed: 0 };
    metrics.inc("manman_log_lines_ingested_total", "session log lines taken into the buffer", {}, p.ingested);
    metrics.inc("manman_log_lines_truncated_total", "session log lines cut to LOG_LINE_MAX_BYTES", {}, p.truncated);
    metrics.inc("manman_log_messages_rejected_total", "log messages skipped, by reason", { reason: "malformed" }, p.malformed);
    if (p.failed > 0) metrics.inc("manman_log_messages_rejected_total", "log messages skipped, by reason", { reason: "failed" }, p.failed);
    const s = hub.stats();
    metrics.set("manman_log_buffer_sessions", "sessions with a log buffer", s.sessions);
    metrics.set("manman_log_buffer_lines", "log lines buffered, all sessions", s.lines);
    metrics.set("manman_log_buffer_bytes", "estimated bytes of buffered log lines", s.bytes);
    metrics.set("manman_log_streams_open", "session log streams open now", s.subscribers);
    metrics.set("manman_log_ingest_attached", "1 while this process consumes its log queue", attached() ? 1 : 0);
  }

  let ticks = 0;
  const timer = setInterval(() => {
    if (++ticks % SWEEP_EVERY_TICKS === 0) hub.sweep();
    if (suppressed > 0 && Date.now() - malformedLoggedAt >= TICK_MS && lastMalformed) {
      log.warn("skipped malformed log lines", { count: suppressed, last_routing_key: lastMalformed.routingKey, last_reason: lastMalformed.reason });
      suppressed = 0;
      malformedLoggedAt = Date.now();
    }
    flush();
    if (!attached()) void reattach();
  }, TICK_MS);

  await reattach();

  const stopped = new Promise<void>((resolve) => {
    const stop = async () => {
      clearInterval(timer);
      await attaching;
      const ch = channel;
      channel = undefined;
      // Closing the channel cancels the consumer; the exclusive queue goes
      // with the connection, which the composition root closes after this.
      if (ch && !ch.closed) await ch.close().catch(() => {});
      flush();
      resolve();
    };
    if (signal.aborted) void stop();
    else signal.addEventListener("abort", () => void stop(), { once: true });
  });

  const ingest: LogIngest = { queueName, attached, reattach, ingested: () => ingested, stopped };
  ingestOf.set(session, ingest);
  return ingest;
}
