/**
 * The broker objects of CONTRACT §1, declared as the deployed services
 * declare them so this process can take over an existing broker. Run after
 * every (re)connect: the client's session recovers consumers, not topology.
 */
import type { BrokerSession } from "./connection.ts";
import type { Logger } from "../log.ts";
import { errorMessage } from "../util/errors.ts";
import { withOpsChannel } from "./private-api.ts";

export const INTERNAL_EXCHANGE = "manman";
export const EVENT_BINDINGS = ["status.host.#", "status.session.#", "status.backup.#", "health.#"] as const;

export interface EventTopology {
  queueName: string;
  queueType: "classic" | "quorum";
  externalExchange: string;
}

export function deadLetterQueueName(queueName: string): string {
  return `${queueName}-dlq`;
}

/** The queue arguments of the deployed services (plus the type when quorum is asked for). */
export function eventQueueArguments(t: EventTopology): Record<string, unknown> {
  const args: Record<string, unknown> = {
    "x-dead-letter-exchange": "",
    "x-dead-letter-routing-key": deadLetterQueueName(t.queueName),
  };
  if (t.queueType === "quorum") {
    args["x-queue-type"] = "quorum";
    // RabbitMQ 3.x quorum queues have no delivery limit by default; 20 is
    // 4.0's default, so a message the process keeps crashing on ends in the
    // dead-letter queue instead of looping.
    args["x-delivery-limit"] = 20;
  }
  return args;
}

export async function declareEventTopology(session: BrokerSession, t: EventTopology, logger: Logger): Promise<void> {
  await withOpsChannel(session, async (ch) => {
    await ch.exchangeDeclare(INTERNAL_EXCHANGE, "topic", { durable: true });
    await ch.exchangeDeclare(t.externalExchange, "topic", { durable: true });
    await ch.queueDeclare(deadLetterQueueName(t.queueName), { durable: true });
  });
  try {
    await withOpsChannel(session, (ch) => ch.queueDeclare(t.queueName, { durable: true }, eventQueueArguments(t)));
  } catch (err) {
    // PRECONDITION_FAILED: the queue exists with other arguments. Deleting it
    // would lose its messages, so use it as it is.
    if (!/PRECONDITION_FAILED|inequivalent/i.test(errorMessage(err))) throw err;
    logger.warn("event queue exists with other arguments; using it as it is", {
      queue: t.queueName,
      error: errorMessage(err),
    });
    await withOpsChannel(session, (ch) => ch.queueDeclare(t.queueName, { passive: true }));
  }
  await withOpsChannel(session, async (ch) => {
    for (const key of EVENT_BINDINGS) await ch.queueBind(t.queueName, INTERNAL_EXCHANGE, key);
  });
}

/** Messages in a queue now (a passive declare on the ops channel). */
export async function queueDepth(session: BrokerSession, queueName: string): Promise<number> {
  return (await withOpsChannel(session, (ch) => ch.queueDeclare(queueName, { passive: true }))).messageCount;
}

/** Consumers on a queue now (a passive declare on the ops channel): how a standby sees whether the event queue is held. */
export async function queueConsumers(session: BrokerSession, queueName: string): Promise<number> {
  return (await withOpsChannel(session, (ch) => ch.queueDeclare(queueName, { passive: true }))).consumerCount;
}
