/**
 * Confirmed publishing: a publish resolves only when the broker has taken
 * responsibility for the message. Many publishes may be in flight at once on
 * the session's one confirm channel, which is what makes throughput.
 */
import type { AMQPProperties } from "@cloudamqp/amqp-client";
import type { BrokerSession } from "./connection.ts";
import { confirmChannel } from "./private-api.ts";
import { withTimeout } from "../util/timeout.ts";

export interface Publisher {
  publish(exchange: string, routingKey: string, body: string | Uint8Array, properties?: AMQPProperties): Promise<void>;
}

// 10 s without a confirm: a healthy broker confirms in milliseconds, and a
// connection that died without a reset (no FIN/RST, heartbeat not yet
// missed) would otherwise hold the message and its entity's queue until the
// heartbeat notices. The caller treats it as a failed publish (the outbox
// relay retries), which is at-least-once, never a loss.
const CONFIRM_TIMEOUT_MS = 10_000;

export function confirmedPublisher(session: BrokerSession, confirmTimeoutMs = CONFIRM_TIMEOUT_MS): Publisher {
  return {
    async publish(exchange, routingKey, body, properties = {}) {
      const ch = await confirmChannel(session);
      await withTimeout(
        ch.basicPublish(exchange, routingKey, body, { deliveryMode: 2, ...properties }),
        confirmTimeoutMs,
        `no publisher confirm within ${confirmTimeoutMs} ms`,
      );
    },
  };
}
