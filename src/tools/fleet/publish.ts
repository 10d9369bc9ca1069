/**
 * Publishes a fleet's messages to `manman` as a host manager does (the
 * properties of messages.ts), on one channel so each session's messages
 * keep their order, with publisher confirms so the counts say what the
 * broker took. A real host publishes without confirms; they change nothing
 * a consumer sees.
 */
import type { AMQPChannel } from "@cloudamqp/amqp-client";
import { FLEET_MESSAGE_KINDS, type FleetMessage, type FleetMessageKind } from "./fleet.ts";
import { HOST_EXCHANGE, hostProperties } from "./messages.ts";

// 256 unconfirmed at once: enough to keep the broker busy (PITFALLS: "a few
// hundred confirms"), few enough that a slow broker slows the fleet down.
const WINDOW = 256;

export type SentCounts = Record<FleetMessageKind, number>;

export class FleetPublisher {
  /** Messages the broker confirmed, by kind. */
  readonly sent: SentCounts = Object.fromEntries(FLEET_MESSAGE_KINDS.map((k) => [k, 0])) as SentCounts;
  private pending: Promise<void>[] = [];
  private failure: unknown;

  private constructor(private readonly ch: AMQPChannel) {}

  /** Puts the channel in confirm mode and declares `manman` as every host does on channel open. */
  static async on(ch: AMQPChannel): Promise<FleetPublisher> {
    await ch.exchangeDeclare(HOST_EXCHANGE, "topic", { durable: true });
    await ch.confirmSelect();
    return new FleetPublisher(ch);
  }

  /** Resolves once the message is sent; waits for confirms when the window is full. Throws when the channel fails. */
  async publish(m: FleetMessage): Promise<void> {
    if (this.failure !== undefined) throw this.failure;
    const confirmed = this.ch.basicPublish(HOST_EXCHANGE, m.routingKey, m.body, hostProperties(new Date()));
    // Handled at once (a rejection waiting for settle() would count as unhandled), thrown by settle().
    this.pending.push(confirmed.then(() => void this.sent[m.kind]++, (err: unknown) => void (this.failure ??= err)));
    if (this.pending.length >= WINDOW) await this.settle();
  }

  /** Every message published so far is confirmed (or this throws). */
  async settle(): Promise<void> {
    const waiting = this.pending;
    this.pending = [];
    await Promise.all(waiting);
    if (this.failure !== undefined) throw this.failure;
  }
}

export function totalSent(sent: SentCounts): number {
  return FLEET_MESSAGE_KINDS.reduce((n, k) => n + sent[k], 0);
}
