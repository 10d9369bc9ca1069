/**
 * The ingest's figures on /metrics, published once a second: the counts
 * since the last time, and gauges read from the hub and the queue.
 */
import type { Logger } from "../log.ts";
import { OncePer } from "../util/rate-limit.ts";
import { systemClock, type Clock } from "../util/time.ts";
import type { LogHubStats } from "../logs/hub.ts";
import type { Metrics } from "../metrics.ts";
import type { IntakeCounts } from "./line-intake.ts";

export function publishIngestMetrics(metrics: Metrics, counts: IntakeCounts, hub: LogHubStats, attached: boolean): void {
  metrics.inc("manman_log_lines_ingested_total", "session log lines taken into the buffer", {}, counts.ingested);
  metrics.inc("manman_log_lines_truncated_total", "session log lines cut to LOG_LINE_MAX_BYTES", {}, counts.truncated);
  metrics.inc("manman_log_messages_rejected_total", "log messages skipped, by reason", { reason: "malformed" }, counts.malformed);
  metrics.inc("manman_log_messages_rejected_total", "log messages skipped, by reason", { reason: "too_large" }, counts.tooLarge);
  if (counts.failed > 0) metrics.inc("manman_log_messages_rejected_total", "log messages skipped, by reason", { reason: "failed" }, counts.failed);
  metrics.set("manman_log_buffer_sessions", "sessions with a log buffer", hub.sessions);
  metrics.set("manman_log_buffer_lines", "log lines buffered, all sessions", hub.lines);
  metrics.set("manman_log_buffer_bytes", "estimated bytes of buffered log lines", hub.bytes);
  metrics.set("manman_log_buffer_pinned_bytes", "estimated bytes of log lines the buffers dropped that streams still have to send (counted in LOG_BUFFER_MAX_BYTES)", hub.pinnedBytes);
  metrics.set("manman_log_streams_waiting", "log streams waiting for the first line of a session with no buffer", hub.waiting);
  metrics.set("manman_log_streams_open", "session log streams open now", hub.subscribers);
  metrics.set("manman_log_ingest_attached", "1 while this process consumes its log queue", attached ? 1 : 0);
}

// One warn line a minute while the queue stays full, as for dead letters.
const FULL_WARN_EVERY_MS = 60_000;

/**
 * This process's log queue as the broker last reported it (read once a
 * second): the lines it holds, and whether it is full. Full, the broker drops
 * the oldest line for every new one (x-overflow drop-head) and tells nobody,
 * so each check that finds it full is counted, and said at warn once a
 * minute while it lasts.
 */
export class QueueDepthWatch {
  private readonly fullWarn: OncePer;

  constructor(
    private readonly maxLength: number,
    private readonly log: Logger,
    clock: Clock = systemClock,
  ) {
    this.fullWarn = new OncePer(FULL_WARN_EVERY_MS, clock);
  }

  observe(metrics: Metrics | undefined, depth: number | undefined): void {
    if (depth === undefined) return;
    metrics?.set("manman_log_queue_lines", "log lines the broker holds for this process, not yet sent to it (LOG_QUEUE_MAX_LENGTH at most)", depth);
    if (depth < this.maxLength) return;
    metrics?.inc("manman_log_queue_full_total", "once-a-second checks that found this process's log queue holding LOG_QUEUE_MAX_LENGTH lines: the broker was dropping its oldest lines");
    const { allowed, suppressed } = this.fullWarn.take("full");
    if (!allowed) return;
    this.log.warn("the broker holds LOG_QUEUE_MAX_LENGTH log lines for this process and drops the oldest for each new one: this process is not keeping up with the lines", {
      queue_lines: depth,
      full_checks: suppressed + 1,
    });
  }
}
