/**
 * Confirmed publishing: a publish resolves only when the broker has taken
 * responsibility for the message. Many publishes may be in flight at once on
 * the session's one confirm channel, which is what makes throughput.
 */
import type { AMQPProperties } from "@cloudamqp/amqp-client";
import type { BrokerSession } from "./connection.ts";
import { confirmChannel } from "./channels.ts";

export interface Publisher {
  publish(exchange: string, routingKey: string, body: string | Uint8Array, properties?: AMQPProperties): Promise<void>;
}

export function confirmedPublisher(session: BrokerSession): Publisher {
  return {
    async publish(exchange, routingKey, body, properties = {}) {
      const ch = await confirmChannel(session);
      await ch.basicPublish(exchange, routingKey, body, { deliveryMode: 2, ...properties });
    },
  };
}
