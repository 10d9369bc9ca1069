/**
 * Knows whether the database answers, and lets work wait for it to come
 * back instead of failing messages during an outage. At most one probe
 * query is in flight however many messages are waiting or readiness probes
 * ask, each probe gives up after PROBE_TIMEOUT_MS (a query queued behind a
 * pool of stuck connections would otherwise wait without limit), and the log
 * gets one line per change of state (down / still down every 30 s / back),
 * not one per message.
 */
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import { backoff, sleep } from "../util/time.ts";
import { errorMessage } from "../util/errors.ts";
import { withTimeout } from "../util/timeout.ts";

// 30 s between "still down" lines: often enough to see in a log tail that
// the outage goes on, rare enough to not flood a long outage's log.
const STILL_DOWN_EVERY_MS = 30_000;
// 2 s: a database that takes longer for SELECT 1 is as good as down, and it
// matches the readiness check's own deadline.
const PROBE_TIMEOUT_MS = 2000;
// Probes during an outage: 0.2 s doubling to 5 s, with jitter. Back within
// a fraction of a second after a blip, gentle during a long outage.
const PROBE_BASE_MS = 200;
const PROBE_CAP_MS = 5000;
// A stuck probe query is waited on through two deadlines, then replaced:
// at most one stray SELECT 1 per ~4 s of a hung connection.
const ABANDON_AFTER = 2;
// A readiness answer stands for 1 s: kubelets and load balancers probe every
// few seconds each, and one fresh connection a second at most is cheap; an
// outage is still seen at once, since work that fails enters it.
const READY_FOR_MS = 1000;

const UP = "manman_database_up";
const UP_HELP = "1 while the database answers";

interface Outage {
  since: number;
  lastLog: number;
  lastError: string;
  recovered: Promise<void>;
}

export class DatabaseWatch {
  private outage: Outage | null = null;
  private probing: Promise<void> | null = null;
  /** The probe query itself, which may outlive a timed-out probe, and when it was sent. */
  private query: Promise<unknown> | null = null;
  private querySentAt = 0;
  /** When a readiness probe last got an answer. */
  private answeredAt = -Infinity;

  /** `probe` runs a trivial query; best on a connection of its own (driver.ts's freshConnectionProbe, as event-pipeline/pipeline.ts does). */
  constructor(
    private readonly probe: () => Promise<unknown>,
    private readonly logger: Logger,
    private readonly metrics: Metrics,
    private readonly signal: AbortSignal,
    private readonly timeoutMs = PROBE_TIMEOUT_MS,
  ) {
    metrics.set(UP, UP_HELP, 1);
  }

  /**
   * For readiness: true when the database answers. During a known outage it
   * answers at once from the watch's state (throwing the reason), so probes
   * never pile up; otherwise it probes (one shared probe at a time).
   */
  async check(): Promise<boolean> {
    const outage = this.outage;
    // The reason stays in the log (said when the outage began): a public
    // /readyz tells that the database is down, not its address or error text.
    if (outage) throw new Error(`unreachable for ${Math.round((Date.now() - outage.since) / 1000)} s`);
    // A probe opens a connection of its own: however often /readyz is asked,
    // at most one probe per READY_FOR_MS.
    if (Date.now() - this.answeredAt < READY_FOR_MS) return true;
    await this.probeOnce();
    this.answeredAt = Date.now();
    return true;
  }

  /** When the current outage began (ms since the epoch), or undefined while the database answers. */
  downSince(): number | undefined {
    return this.outage?.since;
  }

  /**
   * After a query failed: true if the database answers (the failure was the
   * message's own), false after waiting for it to come back (the failure was
   * the outage's). Rejects only when the process is shutting down.
   */
  async answersOrWait(cause: unknown): Promise<boolean> {
    if (!this.outage) {
      try {
        await this.probeOnce();
        return true;
      } catch (err) {
        this.enterOutage(cause ?? err);
      }
    }
    await this.outage?.recovered;
    this.signal.throwIfAborted();
    return false;
  }

  /** One probe shared by every caller that asks while it runs; enters the outage state when it fails. */
  private probeOnce(): Promise<void> {
    this.probing ??= this.timedProbe()
      .catch((err) => {
        this.enterOutage(err);
        throw err;
      })
      .finally(() => (this.probing = null));
    return this.probing;
  }

  /**
   * A probe that gives up after timeoutMs. A probe query that timed out
   * (stuck on a dead socket) is waited on again rather than joined by a new
   * one, so a long outage never queues a pile of SELECT 1s; after
   * ABANDON_AFTER timeouts it is given up for a fresh one, because a query
   * whose connection was killed under it has been seen never to settle
   * (postgres.js on Bun), which would otherwise keep the watch down forever.
   */
  private async timedProbe(): Promise<void> {
    if (!this.query || Date.now() - this.querySentAt > ABANDON_AFTER * this.timeoutMs) {
      const query: Promise<unknown> = this.probe().finally(() => {
        if (this.query === query) this.query = null;
      });
      this.query = query;
      this.querySentAt = Date.now();
    }
    await withTimeout(this.query, this.timeoutMs, `no answer to SELECT 1 in ${this.timeoutMs} ms`);
  }

  private enterOutage(cause: unknown): void {
    if (this.outage || this.signal.aborted) return;
    const since = Date.now();
    this.logger.error("database unreachable; holding messages until it answers", { error: errorMessage(cause) });
    this.metrics.set(UP, UP_HELP, 0);
    this.metrics.inc("manman_database_outages_total", "times the database stopped answering");
    const outage: Outage = { since, lastLog: since, lastError: errorMessage(cause), recovered: Promise.resolve() };
    this.outage = outage;
    outage.recovered = this.probeUntilUp(outage);
  }

  private async probeUntilUp(outage: Outage): Promise<void> {
    for (let attempt = 1; !this.signal.aborted; attempt++) {
      try {
        await sleep(backoff(attempt, PROBE_BASE_MS, PROBE_CAP_MS), this.signal);
      } catch {
        break;
      }
      try {
        await this.timedProbe();
        this.logger.info("database reachable again; resuming", { down_ms: Date.now() - outage.since });
        this.metrics.set(UP, UP_HELP, 1);
        break;
      } catch (err) {
        outage.lastError = errorMessage(err);
        if (Date.now() - outage.lastLog >= STILL_DOWN_EVERY_MS) {
          outage.lastLog = Date.now();
          this.logger.warn("database still unreachable", { down_ms: Date.now() - outage.since, error: outage.lastError });
        }
      }
    }
    this.outage = null;
  }
}
