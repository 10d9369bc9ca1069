/**
 * The ingest's figures on /metrics, published once a second: the counts
 * since the last time, and gauges read from the hub and the queue.
 */
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
