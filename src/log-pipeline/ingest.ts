/**
 * Log ingest: every process reads every session log line from a queue of
 * its own (src/amqp/log-queue.ts), decodes it and hands it to the hub
 * (line-intake.ts). Once a second a tick publishes the figures
 * (ingest-metrics.ts), summarises held-back warnings, re-attaches a lost
 * consumer and, every SWEEP_EVERY_TICKS, frees expired buffers.
 *
 * The queue dies with its connection: whoever owns the broker session's
 * onConnect hook calls `reattach()` of the returned ingest (the 1 s tick
 * does it anyway if nobody does).
 */
import type { BrokerSession } from "../amqp/connection.ts";
import { logQueue } from "../amqp/log-queue.ts";
import type { Config } from "../config.ts";
import type { Logger } from "../log.ts";
import type { LogHub } from "../logs/hub.ts";
import type { LogLine } from "../logs/line.ts";
import type { Metrics } from "../metrics.ts";
import { aborted } from "../util/abort.ts";
import { publishIngestMetrics, QueueDepthWatch } from "./ingest-metrics.ts";
import { LineIntake, MalformedWarnings, maxLogBodyBytes } from "./line-intake.ts";

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

export async function startLogIngest(options: LogIngestOptions): Promise<LogIngest> {
  const { session, hub, config, metrics, signal } = options;
  const log = options.logger.child({ component: "log_ingest" });
  const echo = config.debugLogOutput
    ? (options.echo ?? ((l: LogLine) => log.info("session log line", { session_id: l.sessionId, sequence_number: l.seq, source: l.source, message: l.message })))
    : undefined;
  const warnings = new MalformedWarnings(log, TICK_MS);
  const intake = new LineIntake({ hub, maxMessageBytes: config.logLineMaxBytes, maxBodyBytes: maxLogBodyBytes(config.logLineMaxBytes), log, warnings, echo });
  const queue = logQueue({
    session,
    maxLength: config.logQueueMaxLength,
    messageTtlMs: config.logBufferTtl * 1000,
    onMessage: (msg) => intake.take(msg.body, msg.routingKey),
    logger: log,
    signal,
  });
  const flush = () => {
    if (metrics) publishIngestMetrics(metrics, intake.takeCounts(), hub.stats(), queue.attached());
  };

  const depthWatch = new QueueDepthWatch(config.logQueueMaxLength, log);
  let readingDepth = false;
  const readDepth = () => {
    // One read at a time: a reply late behind a backlog of lines is not asked again.
    if (readingDepth) return;
    readingDepth = true;
    void queue
      .depth()
      .then((depth) => depthWatch.observe(metrics, depth))
      .finally(() => (readingDepth = false));
  };

  let ticks = 0;
  const timer = setInterval(() => {
    if (++ticks % SWEEP_EVERY_TICKS === 0) hub.sweep();
    warnings.summarise();
    flush();
    if (!queue.attached()) void queue.reattach();
    else readDepth();
  }, TICK_MS);

  await queue.reattach();

  const stopped = aborted(signal).then(async () => {
    clearInterval(timer);
    // Closing the channel cancels the consumer; the exclusive queue goes
    // with the connection, which the composition root closes after this.
    await queue.close();
    flush();
  });

  return { queueName: queue.name, attached: queue.attached, reattach: queue.reattach, ingested: () => intake.ingested, stopped };
}
