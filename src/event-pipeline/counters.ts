/**
 * The event consumer's counters, named once: the names are what dashboards
 * and alerts know (README, docs), so they never change with the code
 * around them.
 */
import type { Metrics } from "../metrics.ts";

export class EventCounters {
  constructor(private readonly metrics: Metrics) {}

  /** One per message settled: `kind` is the message kind (or oversize, undecodable), `outcome` what became of it. */
  message(kind: string, outcome: string): void {
    this.metrics.inc("manman_event_messages_total", "event messages by kind and outcome", { kind, outcome });
  }

  leftForRedelivery(): void {
    this.metrics.inc("manman_event_messages_left_for_redelivery_total", "event messages left to the broker to redeliver (lost channel, shutdown)");
  }

  earlyRetry(): void {
    this.metrics.inc("manman_event_early_retries_total", "tries again of a pending -> running message waiting for its predecessor");
  }

  retry(): void {
    this.metrics.inc("manman_event_retries_total", "retries of event messages after a transient failure");
  }

  connectionLoss(): void {
    this.metrics.inc("manman_database_connection_losses_total", "statements run again because their database connection was lost");
  }
}
