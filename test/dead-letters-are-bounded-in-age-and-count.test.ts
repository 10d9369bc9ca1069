/**
 * The dead-letter queue can't be given x-max-length or x-message-ttl on a
 * live broker (its arguments are fixed), so the processor bounds it itself:
 * each copy expires after DLQ_MAX_AGE_HOURS, and past DLQ_MAX_MESSAGES
 * further dead letters are dropped, counted and logged.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { AMQPClient, type AMQPChannel } from "@cloudamqp/amqp-client";
import { startProcessor, testWorld, type RunningProcessor } from "./support/processor.ts";
import { waitFor } from "./support/services.ts";

let world: Awaited<ReturnType<typeof testWorld>>;
let processor: RunningProcessor;
let client: AMQPClient;
let ch: AMQPChannel;

beforeAll(async () => {
  world = await testWorld("dlqbound");
  processor = await startProcessor(world.vhost, world.db, { DLQ_MAX_MESSAGES: "3", DLQ_MAX_AGE_HOURS: "2" });
  client = new AMQPClient(world.vhost.url);
  await client.connect();
  ch = await client.channel();
  await ch.confirmSelect();
});

afterAll(async () => {
  await client?.close().catch(() => {});
  await processor?.stop();
  await world?.remove();
});

test("dead letters expire after DLQ_MAX_AGE_HOURS and stop at DLQ_MAX_MESSAGES, the rest dropped, counted and logged", async () => {
  // A non-persistent original with its own short expiration: the copy must not inherit either.
  for (let i = 0; i < 5; i++) await ch.basicPublish("manman", "status.host.1", `{not json ${i}`, { deliveryMode: 1, expiration: "600000" });
  const metrics = processor.service.metrics;
  await waitFor(() => metrics.total("manman_event_messages_dead_lettered_total") + metrics.total("manman_dead_letters_dropped_total") === 5);
  expect(metrics.total("manman_event_messages_dead_lettered_total")).toBe(3);
  expect(metrics.total("manman_dead_letters_dropped_total")).toBe(2);
  const full = processor.logs.filter((l) => l.level === "error" && String(l.msg).startsWith("dead-letter queue is full"));
  expect(full).toHaveLength(1);

  const dlq = await ch.queueDeclare("processor-events-dlq", { passive: true });
  expect(dlq.messageCount).toBe(3);
  const copy = await ch.basicGet("processor-events-dlq", { noAck: true });
  expect(copy!.properties.expiration).toBe(String(2 * 3_600_000));
  expect(copy!.properties.deliveryMode).toBe(2);
  expect(String(copy!.properties.headers!["x-death-reason"])).toContain("not JSON");
  // Nothing left behind unacked: the processor is still ready.
  expect((await fetch(processor.url("/readyz"))).status).toBe(200);
});
