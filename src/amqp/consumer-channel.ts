/**
 * A consumer on a channel of its own, rather than the session's
 * subscription recovery: that re-consumes before the topology is redeclared
 * (and fails for a deleted queue), and never notices a channel the broker
 * closed on a live connection (consumer_timeout, queue deleted). The
 * watchdog (consumer-watchdog.ts) looks at `attached` and calls `reattach`.
 *
 * `exclusive` consumes as RabbitMQ's exclusive consumer: the broker refuses
 * any other consumer on the queue (ACCESS_REFUSED, which closes that
 * channel) until this channel or its connection closes, and then requeues
 * what was unacked here. The event consumer's role rests on it
 * (event-pipeline/consumer-role.ts).
 */
import type { AMQPChannel, AMQPMessage } from "@cloudamqp/amqp-client";
import type { BrokerSession } from "./connection.ts";
import { openOwnChannel } from "./private-api.ts";

export interface ConsumerChannelOptions {
  queueName: string;
  prefetch: number;
  /** Consume as the queue's one exclusive consumer. */
  exclusive?: boolean;
}

/** The broker refused the consume because another consumer holds the queue (exclusively, or at all for an exclusive ask). */
export function isHeldElsewhere(err: unknown): boolean {
  return /ACCESS_REFUSED|exclusive use|exclusive access/i.test(err instanceof Error ? err.message : String(err));
}

interface Attachment {
  channel: AMQPChannel;
  tag: string;
}

export class ConsumerChannel {
  private current: Attachment | null = null;
  private stopping = false;

  constructor(
    private readonly session: BrokerSession,
    private readonly options: ConsumerChannelOptions,
    private readonly onMessage: (msg: AMQPMessage) => void,
  ) {}

  /** Opens a channel, sets its prefetch and consumes; the channel is closed again if that fails. */
  async attach(): Promise<void> {
    const channel = await openOwnChannel(this.session);
    try {
      await channel.basicQos(this.options.prefetch);
      const consumer = await channel.basicConsume(this.options.queueName, { noAck: false, exclusive: this.options.exclusive ?? false }, this.onMessage);
      this.current = { channel, tag: consumer.tag };
    } catch (err) {
      await channel.close().catch(() => {});
      throw err;
    }
  }

  /** True while a consumer is registered on a live channel, and not stopping. */
  get attached(): boolean {
    const a = this.current;
    return !this.stopping && !this.session.closed && a !== null && !a.channel.closed && a.channel.consumers.has(a.tag);
  }

  get isStopping(): boolean {
    return this.stopping;
  }

  /** Closes what is left of the old channel, redeclares (`declare`) and attaches again. */
  async reattach(declare: () => Promise<void>): Promise<void> {
    const old = this.current;
    this.current = null;
    if (old && !old.channel.closed) await old.channel.close().catch(() => {});
    await declare();
    await this.attach();
  }

  /** From now on not attached: readiness goes down and the watchdog stops re-attaching. */
  beginStop(): void {
    this.stopping = true;
  }

  /**
   * Closes the channel: the broker requeues every message unacked on it
   * (and frees an exclusive consumer's queue for another).
   */
  async close(): Promise<void> {
    const last = this.current;
    this.current = null;
    if (last && !last.channel.closed) await last.channel.close().catch(() => {});
  }

  /**
   * basic.cancel only: the channel stays open so in-flight messages can
   * still be acked (closing it would requeue them).
   */
  async cancel(): Promise<void> {
    const last = this.current;
    if (last && !last.channel.closed) await last.channel.basicCancel(last.tag).catch(() => {});
  }
}
