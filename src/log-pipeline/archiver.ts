/**
 * The log archive, wired (issue 10; docs/archive.md): the durable queue
 * (amqp/archive-queue.ts) → decode (logs/decode.ts) → minute windows
 * (logs/archive/window.ts) → the writer (archive-writer.ts) → bulk acks
 * (amqp/acker.ts), with the housekeeping (archive-maintenance.ts) beside it.
 *
 * A window is written when its minute ended LOG_ARCHIVE_GRACE_SECONDS ago,
 * when its session is seen in a terminal state (asked once a tick,
 * archive-sessions.ts), when its first line has been held a minute plus
 * the grace whatever its timestamps say (a host clock running ahead), early
 * when more than half the held-line bound is waiting (or, at the end of a
 * burst, when held lines hold back many written lines' acks: UNPIN_SHARE),
 * and at shutdown. At
 * most MAX_WRITES are written at a time; the rest wait their turn, unacked.
 */
import type { AMQPMessage } from "@cloudamqp/amqp-client";
import { Acker, type AckChannel } from "../amqp/acker.ts";
import { consumeArchiveQueue, MAX_PREFETCH } from "../amqp/archive-queue.ts";
import type { BrokerSession } from "../amqp/connection.ts";
import type { Config } from "../config.ts";
import type { Sql } from "../db/pool.ts";
import { isTerminal, type SessionState } from "../events/session-machine.ts";
import type { Logger } from "../log.ts";
import { PendingWindows, type TakenWindow, type WindowId } from "../logs/archive/window.ts";
import { decodeLogLine } from "../logs/decode.ts";
import type { Metrics } from "../metrics.ts";
import type { ObjectStore } from "../storage/store.ts";
import { aborted } from "../util/abort.ts";
import { errorMessage } from "../util/errors.ts";
import { OncePer } from "../util/rate-limit.ts";
import { sleep } from "../util/time.ts";
import { settlesWithin } from "../util/timeout.ts";
import { runArchiveMaintenance } from "./archive-maintenance.ts";
import { ArchiveCounters, type Trigger } from "./archive-metrics.ts";
import { ArchiveSessions } from "./archive-sessions.ts";
import { ArchiveWriter, type Held } from "./archive-writer.ts";
import { MalformedWarnings } from "./line-intake.ts";

// 1 s: how soon an ended session's minutes are written and figures reach
// /metrics; one small SELECT of the sessions held, against a 15 s grace.
const TICK_MS = 1_000;
// 8 writes at once: each holds one database connection only while one of
// its two statements runs, so even with all eight in a statement the pool
// (DB_POOL_MAX 10 by default) keeps two for the event pipeline. Measured
// (bench:archive, a queued backlog of 20 sessions on this 2-core box): 8
// drained ~69,000 lines/s to the directory against ~64,000 with 4, and 16
// was no faster; more writes in flight mostly hide a store's latency,
// which matters more on S3 (tens of ms a request) than on s3rver here.
const MAX_WRITES = 8;
// A window is written once its first line has been held a minute plus the
// grace (the most a correct clock would hold it), whatever its minute says,
// and never later than 10 minutes: RabbitMQ takes back every line of a
// channel with a delivery unacked past consumer_timeout (30 min by
// default, often set lower), and a write may still need retries after that.
const HELD_TOO_LONG_MS = 60_000;
const MAX_HOLD_MS = 10 * 60_000;
// 2 s: a tick (1 s) plus a write (well under a second when storage is well).
const ACK_LINGER_MS = 2_000;
// Lines written and waiting for their ack behind a line still held (the
// acker's gap) are acked one by one after ACK_LINGER_MS, each costing
// RabbitMQ in proportion to the unacked lines below it. When a quarter of
// the early-cut mark waits so and no early cut came since the last tick
// (the end of a burst: the last held lines wait for their grace), the
// windows holding them back are written too, as early parts. Measured
// (bench:archive, lines dated now): see docs/archive.md.
const UNPIN_SHARE = 4;
// One warning per session per minute about lines of a session that does not exist.
const UNKNOWN_WARN_EVERY_MS = 60_000;

export interface LogArchiverOptions {
  config: Pick<Config, "logArchiveGraceSeconds" | "logArchiveMaxPendingLines" | "logArchiveRetentionDays" | "logLineMaxBytes" | "shutdownTimeoutSeconds" | "postgresUrl">;
  sql: Sql;
  session: BrokerSession;
  store: ObjectStore;
  logger: Logger;
  metrics: Metrics;
  signal: AbortSignal;
}

export interface LogArchiver {
  /** Readiness: true while consuming with every write going through; throws the reason otherwise. */
  check(): boolean;
  /** Lines received and not yet acked. */
  pendingLines(): number;
  /** Settles once held lines are written (or SHUTDOWN_TIMEOUT_SECONDS passed) and acked. */
  stopped: Promise<void>;
}

export async function startLogArchiver(options: LogArchiverOptions): Promise<LogArchiver> {
  const { config, sql, store, metrics, signal } = options;
  const log = options.logger.child({ component: "log_archive" });
  const prefetch = Math.min(config.logArchiveMaxPendingLines, MAX_PREFETCH);
  // Cut early at half the bound, down to a quarter (toCutEarly's low
  // water): the other half of the broker's window keeps lines coming while
  // the cut is written, so the consumer never stalls at the prefetch limit.
  const cutAt = Math.floor(prefetch / 2);
  const graceMs = config.logArchiveGraceSeconds * 1000;
  const hardStop = new AbortController();
  let draining = false;
  const counters = new ArchiveCounters();
  const sessions = new ArchiveSessions(sql, (status) => isTerminal(status as SessionState));
  const writer = new ArchiveWriter({ sql, store, sessions, counters, logger: log, signal: hardStop.signal, draining: () => draining });
  const windows = new PendingWindows<Held>();
  // ~10% of the window per multiple-ack (RabbitMQ's guidance; acker.ts).
  // Minutes of different sessions finish out of delivery order, and RabbitMQ
  // pays for each single ack by the unacked lines below it (acker.ts): lines
  // beyond a gap wait ACK_LINGER_MS for it to close, so a tick's minutes,
  // written together, are mostly acked by one multiple-ack.
  const acker = new Acker({ batch: Math.ceil(prefetch / 10), lingerMs: ACK_LINGER_MS });
  const warnings = new MalformedWarnings(log, TICK_MS);
  const unknownWarned = new OncePer(UNKNOWN_WARN_EVERY_MS);
  const waiting: { window: TakenWindow<Held>; trigger: Trigger }[] = [];
  let writing = 0;
  let inWrites = 0; // lines taken from the windows and not yet settled
  const notYet = new Set<number>(); // sessions whose row was not found this tick
  let pumpSoon: ReturnType<typeof setTimeout> | undefined;
  // Per channel, the highest delivery tag written; and whether an early cut came since the last tick (UNPIN_SHARE).
  const newestWritten = new Map<AckChannel, number>();
  let cutSinceTick = false;
  let idle: (() => void) | undefined;

  function onMessage(msg: AMQPMessage): void {
    const held: Held = { deliveryTag: msg.deliveryTag, channel: msg.channel, redelivered: msg.redelivered };
    const r = decodeLogLine(msg.body, config.logLineMaxBytes);
    if (!r.ok) {
      // Undecodable: nothing to archive, and holding it would block nobody
      // but itself; acked, counted and logged (at most once a second).
      counters.malformed++;
      warnings.skipped(msg.routingKey, r.reason);
      acker.ack(held);
      return;
    }
    const { sessionId, timestamp, source, message } = r.line;
    windows.add({ sessionId, timestamp, source, message }, held, Date.now());
    if ((windows.pendingLines > cutAt || draining) && !pumpSoon) pumpSoon = setTimeout(() => pump(), 0);
  }

  function take(ids: WindowId[], trigger: Trigger): void {
    for (const id of ids) {
      // A session not found yet is asked about again next tick, not at once in a loop.
      if (notYet.has(id.sessionId) && !draining) continue;
      const window = windows.take(id);
      if (!window) continue;
      inWrites += window.count;
      waiting.push({ window, trigger });
    }
  }

  /**
   * Takes what is due and starts writes. The time-based checks run once a
   * tick (`full`) or when the held lines pass the early-cut mark, not after
   * every write: a backlog of old lines (after an outage) is all due at
   * once, and taking it after each write would cut it into one small part
   * per write. Taking every due minute before the early cut (oldest
   * windows first) also writes a backlog in delivery order, so one
   * multiple-ack covers it.
   */
  function pump(full = draining): void {
    clearTimeout(pumpSoon);
    pumpSoon = undefined;
    if (full || windows.pendingLines > cutAt) {
      const now = Date.now();
      if (draining) take(windows.all(), "shutdown");
      take(windows.due(now, graceMs), "minute_ended");
      const held = new Set(windows.all().map((w) => w.sessionId));
      for (const id of sessions.book.ended(held)) take(windows.ofSession(id), "session_ended");
      take(windows.heldLongerThan(now, Math.min(HELD_TOO_LONG_MS + graceMs, MAX_HOLD_MS)), "held_too_long");
    }
    const early = windows.toCutEarly(cutAt);
    if (early.length > 0) cutSinceTick = true;
    take(early, "early");
    while (writing < MAX_WRITES && waiting.length > 0) void run(waiting.shift()!);
  }

  /** See UNPIN_SHARE: once a tick, the windows that hold back many written lines' acks, when no early cut did. */
  function unpin(): void {
    for (const ch of newestWritten.keys()) if (ch.closed) newestWritten.delete(ch);
    if (!cutSinceTick && acker.waiting >= cutAt / UNPIN_SHARE) {
      take(windows.openedBefore((h) => h.deliveryTag < (newestWritten.get(h.channel) ?? 0)), "early");
    }
    cutSinceTick = false;
  }

  async function run({ window, trigger }: { window: TakenWindow<Held>; trigger: Trigger }): Promise<void> {
    writing++;
    try {
      const result = await writer.write(window);
      if (result.kind === "archived") {
        for (const h of window.handles) acker.ack(h);
        for (const h of window.handles) if (h.deliveryTag > (newestWritten.get(h.channel) ?? 0)) newestWritten.set(h.channel, h.deliveryTag);
        counters.archivedLines += window.count;
        counters.objects[trigger]++;
      } else if (result.kind === "unknown_session") {
        for (const h of window.handles) acker.ack(h);
        counters.unknownSession += window.count;
        const warn = unknownWarned.take(window.sessionId);
        if (warn.allowed) {
          log.warn("dropped log lines of a session that does not exist", { session_id: window.sessionId, lines: window.count, missing_for_ms: result.missingForMs, also_dropped_since_last: warn.suppressed });
        }
      } else if (result.kind === "given_back") {
        // Their channel closed: lines on it come again; any on an open channel wait for the next part.
        result.lines.forEach((l, i) => windows.add({ ...l, sessionId: window.sessionId }, result.handles[i]!, Date.now()));
      } else if (result.kind === "not_yet") {
        notYet.add(window.sessionId);
        window.lines.forEach((l, i) => windows.add({ ...l, sessionId: window.sessionId }, window.handles[i]!, Date.now()));
      }
    } catch (err) {
      // Not expected (the writer retries everything it can); the lines stay
      // unacked and come back when the channel closes.
      log.error("unexpected failure writing an archive object; its lines will be redelivered", { session_id: window.sessionId, error: errorMessage(err) });
    } finally {
      inWrites -= window.count;
      writing--;
      if (!hardStop.signal.aborted) pump();
      if (writing === 0 && waiting.length === 0) idle?.();
    }
  }

  const queue = await consumeArchiveQueue({ session: options.session, prefetch, onMessage, logger: log, metrics, signal });
  const publish = () => counters.publish(metrics, { pendingLines: windows.pendingLines + inWrites, attached: queue.attached(), writesFailing: writer.health.failing });

  const ticking = (async () => {
    while (!signal.aborted) {
      await sleep(TICK_MS, signal).catch(() => {});
      if (signal.aborted) break;
      const held = new Set(windows.all().map((w) => w.sessionId));
      await sessions.refresh(held, Date.now()).catch((err) => log.debug("could not read the sessions of held lines", { error: errorMessage(err) }));
      notYet.clear();
      unpin();
      pump(true);
      warnings.summarise();
      publish();
    }
  })();
  const maintenance = runArchiveMaintenance(
    { sql, databaseUrl: config.postgresUrl, store, counters, logger: log, retentionDays: config.logArchiveRetentionDays },
    signal,
  );

  const stopped = (async () => {
    await aborted(signal);
    await queue.stopConsuming();
    await ticking;
    draining = true;
    pump(true);
    const allWritten = new Promise<void>((resolve) => {
      idle = resolve;
      if (writing === 0 && waiting.length === 0) resolve();
    });
    if (inWrites > 0) log.info("writing held log lines to the archive before stopping", { lines: inWrites });
    if (!(await settlesWithin(allWritten, config.shutdownTimeoutSeconds * 1000))) {
      log.warn("archive drain deadline passed; unwritten lines stay unacked and will be redelivered", { lines: inWrites + windows.pendingLines });
      hardStop.abort();
      await settlesWithin(allWritten, 5_000);
    }
    acker.flushAll();
    await Promise.all([queue.stopped, settlesWithin(maintenance, 5_000)]);
    publish();
  })();

  return {
    check: () => {
      if (!queue.attached()) throw new Error("not consuming the archive queue");
      const problem = writer.health.problem();
      if (problem) throw new Error(problem);
      return true;
    },
    pendingLines: () => windows.pendingLines + inWrites,
    stopped,
  };
}
