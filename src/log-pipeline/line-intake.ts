/**
 * What the ingest does with each delivery: decode it, hand the line to the
 * hub, count it. Synchronous and never throws (a throw here would reach the
 * AMQP frame parser). Malformed messages are counted and skipped, never
 * fatal, with at most one warning a second (see MalformedWarnings). A body
 * larger than `maxBodyBytes` is skipped before it is decoded or parsed:
 * parsing costs a few times a body's size in strings, so one 100 MB message
 * would cost hundreds of MB.
 */
import { decodeLogLine } from "../logs/decode.ts";
import type { LogHub } from "../logs/hub.ts";
import type { LogLine } from "../logs/line.ts";
import type { Logger } from "../log.ts";
import { errorMessage } from "../util/errors.ts";
import { systemClock, type Clock } from "../util/time.ts";

/** Counts since the last `takeCounts()`, for the metrics. */
export interface IntakeCounts {
  ingested: number;
  truncated: number;
  malformed: number;
  /** Bodies over `maxBodyBytes`, skipped unparsed. */
  tooLarge: number;
  failed: number;
}

export interface LineIntakeOptions {
  hub: LogHub;
  /** LOG_LINE_MAX_BYTES: longer messages are cut, with a marker. */
  maxMessageBytes: number;
  /** Larger bodies are skipped unparsed (see maxLogBodyBytes). */
  maxBodyBytes: number;
  log: Logger;
  warnings: MalformedWarnings;
  /** DEBUG_LOG_OUTPUT: called with every buffered line. */
  echo?: (line: LogLine) => void;
}

export class LineIntake {
  /** Lines handed to the hub so far. */
  ingested = 0;
  // Counted here and taken once a second: a Map lookup per line would cost
  // more than the line itself at 50,000 lines/s.
  private counts: IntakeCounts = emptyCounts();

  constructor(private readonly options: LineIntakeOptions) {}

  take(body: Uint8Array | null, routingKey: string): void {
    const { hub, echo, maxBodyBytes } = this.options;
    if (body && body.byteLength > maxBodyBytes) {
      this.counts.tooLarge++;
      this.options.warnings.skipped(routingKey, `body of ${body.byteLength} bytes exceeds ${maxBodyBytes} (8 x LOG_LINE_MAX_BYTES); not parsed`);
      return;
    }
    const r = decodeLogLine(body, this.options.maxMessageBytes);
    if (!r.ok) {
      this.counts.malformed++;
      this.options.warnings.skipped(routingKey, r.reason);
      return;
    }
    if (r.line.truncated) this.counts.truncated++;
    try {
      const line = hub.append(r.line);
      this.ingested++;
      this.counts.ingested++;
      echo?.(line);
    } catch (err) {
      // Not expected; but a throw here would reach the AMQP frame parser.
      this.counts.failed++;
      this.options.log.error("could not buffer a log line", { routing_key: routingKey, error: errorMessage(err) });
    }
  }

  takeCounts(): IntakeCounts {
    const c = this.counts;
    this.counts = emptyCounts();
    return c;
  }
}

const emptyCounts = (): IntakeCounts => ({ ingested: 0, truncated: 0, malformed: 0, tooLarge: 0, failed: 0 });

/**
 * The largest log message body parsed: 8 x LOG_LINE_MAX_BYTES (512 KiB at
 * the default). JSON escaping makes a body at most 6 times its message
 * (`\u00XX` per byte) plus a few short fields, so every line up to
 * LOG_LINE_MAX_BYTES fits; a longer line would be cut to LOG_LINE_MAX_BYTES
 * anyway, and one past 8 times it is dropped instead of cut.
 */
export function maxLogBodyBytes(logLineMaxBytes: number): number {
  return 8 * logLineMaxBytes;
}

/**
 * At most one warning per `everyMs` about malformed messages, so a flood of
 * bad messages cannot flood the log: the first of a window is logged, the
 * rest are counted, and `summarise()` (from the ingest's tick) logs their
 * number with the last one's reason once the window is over.
 */
export class MalformedWarnings {
  private suppressed = 0;
  private loggedAt = 0;
  private last: { reason: string; routingKey: string } | undefined;

  constructor(
    private readonly log: Logger,
    private readonly everyMs: number,
    private readonly clock: Clock = systemClock,
  ) {}

  skipped(routingKey: string, reason: string): void {
    const now = this.clock.now();
    if (now - this.loggedAt >= this.everyMs) {
      this.log.warn("skipped a malformed log line", { routing_key: routingKey, reason, also_skipped_since_last: this.suppressed });
      this.loggedAt = now;
      this.suppressed = 0;
    } else {
      this.suppressed++;
      this.last = { reason, routingKey };
    }
  }

  summarise(): void {
    if (this.suppressed > 0 && this.clock.now() - this.loggedAt >= this.everyMs && this.last) {
      this.log.warn("skipped malformed log lines", { count: this.suppressed, last_routing_key: this.last.routingKey, last_reason: this.last.reason });
      this.suppressed = 0;
      this.loggedAt = this.clock.now();
    }
  }
}
