/**
 * The log archive's figures: counted in plain fields as things happen (a
 * Map-keyed metrics call per line would cost more than the line at tens of
 * thousands of lines a second) and handed to /metrics once a tick.
 */
import type { Metrics } from "../metrics.ts";

/** Why a window was written: its minute ended, its session ended, memory was full, it was held too long, shutdown. */
export type Trigger = "minute_ended" | "session_ended" | "early" | "held_too_long" | "shutdown";
/** The step of a write that failed (`claim`: claiming a part and inserting its pending row, one statement). */
export type Step = "lookup" | "claim" | "put" | "complete";
export type RemovedReason = "crash_leftover" | "retention";

const zeroTriggers = (): Record<Trigger, number> => ({ minute_ended: 0, session_ended: 0, early: 0, held_too_long: 0, shutdown: 0 });
const zeroSteps = (): Record<Step, number> => ({ lookup: 0, claim: 0, put: 0, complete: 0 });

export class ArchiveCounters {
  archivedLines = 0;
  objects = zeroTriggers();
  failures = zeroSteps();
  duplicates = 0;
  malformed = 0;
  unknownSession = 0;
  removed: Record<RemovedReason, number> = { crash_leftover: 0, retention: 0 };

  /** Adds what was counted since the last publish to `metrics` and starts again from zero. */
  publish(metrics: Metrics, gauges: { pendingLines: number; attached: boolean; writesFailing: number }): void {
    metrics.inc("manman_log_archive_lines_total", "log lines archived: in a stored object whose log_references row is complete, and acked", {}, this.archivedLines);
    for (const [trigger, n] of Object.entries(this.objects)) {
      metrics.inc("manman_log_archive_objects_total", "archive objects written (one log_references row each), by what made them due", { trigger }, n);
    }
    for (const [step, n] of Object.entries(this.failures)) {
      metrics.inc("manman_log_archive_write_failures_total", "failed attempts to write an archive object, by step; retried with backoff, the lines held meanwhile", { step }, n);
    }
    metrics.inc("manman_log_archive_duplicate_lines_total", "redelivered lines found already in a complete object of their minute (written again, never dropped)", {}, this.duplicates);
    metrics.inc("manman_log_archive_lines_dropped_total", "lines not archived: undecodable, or for a session that does not exist", { reason: "malformed" }, this.malformed);
    metrics.inc("manman_log_archive_lines_dropped_total", "lines not archived: undecodable, or for a session that does not exist", { reason: "unknown_session" }, this.unknownSession);
    for (const [reason, n] of Object.entries(this.removed)) {
      metrics.inc("manman_log_archive_rows_removed_total", "log_references rows removed with their objects: left pending by a crash, or past LOG_ARCHIVE_RETENTION_DAYS", { reason }, n);
    }
    metrics.set("manman_log_archive_pending_lines", "lines received from the archive queue and not yet acked (held in minutes or being written)", gauges.pendingLines);
    metrics.set("manman_log_archive_consumer_attached", "1 while the archive queue is consumed", gauges.attached ? 1 : 0);
    metrics.set("manman_log_archive_writes_failing", "archive objects whose last write attempt failed and that are being retried", gauges.writesFailing);
    this.archivedLines = 0;
    this.objects = zeroTriggers();
    this.failures = zeroSteps();
    this.duplicates = 0;
    this.malformed = 0;
    this.unknownSession = 0;
    this.removed = { crash_leftover: 0, retention: 0 };
  }
}
