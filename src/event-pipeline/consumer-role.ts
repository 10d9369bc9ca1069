/**
 * Which replica applies events: the one whose exclusive consume of the event
 * queue the broker accepted (amqp/consumer-channel.ts). No election of our
 * own: RabbitMQ lets one exclusive consumer hold a queue, refuses the others
 * (ACCESS_REFUSED), delivers only to the holder, and frees the queue — with
 * the holder's unacked messages requeued — the moment its channel or
 * connection closes (a clean exit, a kill, a cut, or a missed heartbeat).
 *
 * Every `checkMs` (role-timings.ts):
 * - a standby asks the queue's consumer count (a passive declare, which
 *   never fails for "held": asking to consume would, and the broker logs
 *   each refusal), and when it is 0 and its own database answers, consumes
 *   exclusively; a refusal means another replica was quicker;
 * - the active replica notices a consumer it lost (channel or connection
 *   gone, queue deleted) and becomes a standby that tries again at once;
 *   and while work waits on the database it checks the database: one that
 *   has not answered for `giveUpMs` makes it close its channel, so its
 *   messages go to a replica that reaches the database.
 *
 * Log lines keep the single-replica words ("event consumer lost its channel;
 * re-attaching", "event consumer attached again") when it is this replica
 * that takes the role back with nobody in between.
 */
import type { BrokerSession } from "../amqp/connection.ts";
import { isHeldElsewhere, type ConsumerChannel } from "../amqp/consumer-channel.ts";
import type { DatabaseWatch } from "../db/watch.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import { errorMessage } from "../util/errors.ts";
import { sleep } from "../util/time.ts";
import type { RoleTimings } from "./role-timings.ts";

export type Role = "active" | "standby";

export interface RoleStatus {
  replica: string;
  role: Role;
  /** When this replica took its current role (ISO 8601). */
  since: string;
  queue: string;
  /** Why a standby stands by. */
  reason?: string;
}

export interface ConsumerRoleOptions {
  queueName: string;
  replica: string;
  timings: RoleTimings;
}

export interface ConsumerRoleDeps {
  /** The role's own broker connection (its heartbeat is what frees the role when this process goes silent). */
  session: BrokerSession;
  channel: ConsumerChannel;
  /** Declares the event topology; before every attach (the queue may have been deleted). */
  declare(): Promise<void>;
  /** Consumers on the event queue now. */
  consumers(): Promise<number>;
  database: DatabaseWatch;
  /** True while work waits without progress (the only time the database's outage matters); called once per check. */
  busy(): boolean;
  logger: Logger;
  metrics: Metrics;
  signal: AbortSignal;
}

const ROLE = "manman_processor_role";
const ROLE_HELP = "1 while this replica holds the event consumer role (applies events), 0 while it stands by";
const SINCE = "manman_processor_role_since_seconds";
const SINCE_HELP = "Unix time this replica took its current role";

export class ConsumerRole {
  private role: Role = "standby";
  private since = Date.now();
  private reason = "starting";
  /** Why standing by is not healthy (the last failure to take the role), for readiness. */
  private problem: string | undefined;
  /** When this replica lost the role without another taking it (0: not lost, or someone else took it since). */
  private lostAt = 0;
  private stopping = false;

  constructor(
    private readonly options: ConsumerRoleOptions,
    private readonly deps: ConsumerRoleDeps,
  ) {
    this.publish();
  }

  get active(): boolean {
    return this.role === "active";
  }

  status(): RoleStatus {
    const { replica, queueName } = this.options;
    const s: RoleStatus = { replica, role: this.role, since: new Date(this.since).toISOString(), queue: queueName };
    if (this.role === "standby") s.reason = this.problem ?? this.reason;
    return s;
  }

  /** For readiness: true while active or standing by in good order; throws why not. */
  ready(): boolean {
    if (this.stopping) throw new Error("stopping");
    if (this.role === "active") {
      if (this.deps.channel.attached) return true;
      throw new Error("lost its channel");
    }
    if (this.deps.session.closed) throw new Error("no broker connection");
    if (this.problem) throw new Error(this.problem);
    return true;
  }

  /** The first look, at start: the first log lines say which role this replica starts in. */
  async start(): Promise<void> {
    await this.step().catch((err) => (this.problem = errorMessage(err)));
  }

  /** A look every checkMs until the signal or `stop()`. */
  async run(): Promise<void> {
    const { signal } = this.deps;
    while (!signal.aborted && !this.stopping) {
      await sleep(this.options.timings.checkMs, signal).catch(() => {});
      if (signal.aborted || this.stopping) break;
      await this.step().catch((err) => this.deps.logger.error("event consumer role check failed", { error: errorMessage(err) }));
    }
  }

  /** Shutdown: no more attempts to take the role; readiness goes down. */
  stop(): void {
    this.stopping = true;
  }

  private async step(): Promise<void> {
    if (this.role === "active") return this.checkActive();
    const { session, channel, database, logger } = this.deps;
    if (session.closed) return;
    // Held by another: the usual answer, no error on either side.
    const held = await this.deps.consumers().catch(() => 0); // a missing queue is declared by the attach
    if (held > 0) return this.standingBy("another replica consumes the event queue", true);
    // Taking the role with a database we can't reach would only hold messages.
    if (database.downSince() !== undefined) return this.standingBy("its database does not answer", false);
    try {
      await database.check();
    } catch {
      return this.standingBy("its database does not answer", false);
    }
    try {
      await channel.reattach(() => this.deps.declare());
    } catch (err) {
      if (isHeldElsewhere(err)) return this.standingBy("another replica consumes the event queue", true);
      if (this.problem === undefined) logger.warn("taking the event consumer role failed; retrying", { error: errorMessage(err) });
      this.problem = errorMessage(err);
      return;
    }
    if (this.stopping) return void (await channel.close());
    this.problem = undefined;
    if (this.lostAt > 0) {
      this.deps.metrics.inc("manman_event_consumer_reattached_total", "times the event consumer was attached again after losing its channel or connection");
      logger.info("event consumer attached again", { detached_ms: Date.now() - this.lostAt });
    } else logger.info("took the event consumer role: applying events", { replica: this.options.replica, queue: this.options.queueName });
    this.lostAt = 0;
    this.become("active");
  }

  private async checkActive(): Promise<void> {
    const { channel, database, logger, session } = this.deps;
    if (!channel.attached) {
      // A lost connection has its own log line; a lost channel on a live
      // connection (consumer_timeout, queue deleted) gets this one.
      if (!session.closed) logger.warn("event consumer lost its channel; re-attaching");
      this.lostAt = Date.now();
      this.become("standby", "lost its channel or connection");
      return this.step(); // take it back at once if it is free
    }
    if (!this.deps.busy() && database.downSince() === undefined) return;
    await database.check().catch(() => {}); // enters the outage when it fails
    const since = database.downSince();
    if (since === undefined || Date.now() - since < this.options.timings.giveUpMs) return;
    logger.warn("database unreachable; giving up the event consumer role so a replica that reaches it takes over", { down_ms: Date.now() - since });
    this.deps.metrics.inc("manman_processor_role_given_up_total", "times this replica gave the event consumer role up because its database did not answer");
    // Closing the channel requeues everything unacked here, in order; work
    // still waiting on the database finds its channel closed and leaves it.
    await channel.close();
    this.become("standby", "gave the role up: its database did not answer");
  }

  private standingBy(reason: string, heldByAnother: boolean): void {
    if (heldByAnother) {
      this.lostAt = 0;
      if (this.reason !== reason) this.deps.logger.info("standing by: another replica applies events", { replica: this.options.replica });
    }
    this.reason = reason;
    this.problem = undefined;
  }

  private become(role: Role, reason = ""): void {
    this.role = role;
    this.since = Date.now();
    this.reason = reason;
    this.publish();
  }

  private publish(): void {
    this.deps.metrics.set(ROLE, ROLE_HELP, this.role === "active" ? 1 : 0);
    this.deps.metrics.set(SINCE, SINCE_HELP, Math.floor(this.since / 1000));
  }
}
