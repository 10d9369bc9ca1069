import { describe, expect, test } from "bun:test";
import type { AMQPMessage, AMQPProperties } from "@cloudamqp/amqp-client";
import { DeadLetterQueue, routingKeyPrefix } from "./dead-letter.ts";
import { Metrics } from "../metrics.ts";
import { createLogger } from "../log.ts";


function setup(initialDepth: number, max = 3) {
  let now = 0;
  let depth = initialDepth;
  const sent: { key: string; properties: AMQPProperties }[] = [];
  const logged: unknown[] = [];
  const metrics = new Metrics();
  let asked = 0;
  const dlq = new DeadLetterQueue(
    { queueName: "processor-events-dlq", maxAgeHours: 168, maxMessages: max },
    {
      publisher: { publish: async (_x, key, _b, properties = {}) => void sent.push({ key, properties }) },
      depth: async () => (asked++, depth),
      logger: createLogger({ level: "error", write: (line) => void logged.push(JSON.parse(line)) }),
      metrics,
      clock: { now: () => now },
    },
  );
  const msg = { routingKey: "status.session.7", exchange: "manman", body: new Uint8Array([123, 125]), properties: { deliveryMode: 1, expiration: "5000", headers: { traceparent: "t" } } } as unknown as AMQPMessage;
  return { dlq, sent, logged, metrics, msg, tick: (ms: number) => (now += ms), asked: () => asked, setDepth: (n: number) => (depth = n) };
}

describe("the bounded dead-letter queue", () => {
  test("a copy is persistent, carries the age bound instead of the original's expiration, and the reason", async () => {
    const t = setup(0);
    expect(await t.dlq.send(t.msg, "bad", 2)).toBe("sent");
    expect(t.sent[0]!.key).toBe("processor-events-dlq");
    expect(t.sent[0]!.properties).toMatchObject({ deliveryMode: 2, expiration: String(168 * 3_600_000) });
    expect(t.sent[0]!.properties.headers).toMatchObject({ traceparent: "t", "x-death-reason": "bad", "x-attempts": 2, "x-original-routing-key": "status.session.7" });
  });
  test("when the queue holds the maximum, further dead letters are dropped, counted and logged once a minute", async () => {
    const t = setup(1, 3);
    expect(await t.dlq.send(t.msg, "a", 1)).toBe("sent");
    expect(await t.dlq.send(t.msg, "b", 1)).toBe("sent"); // 1 known + 2 sent since = 3: full now
    expect(await t.dlq.send(t.msg, "c", 1)).toBe("dropped");
    expect(await t.dlq.send(t.msg, "d", 1)).toBe("dropped");
    expect(t.sent).toHaveLength(2);
    expect(t.metrics.total("manman_dead_letters_dropped_total")).toBe(2);
    expect(t.logged).toHaveLength(1);
    t.tick(60_000);
    t.setDepth(3); // the broker holds the two sent plus the first
    expect(await t.dlq.send(t.msg, "e", 1)).toBe("dropped");
    expect(t.logged).toHaveLength(2);
    expect(t.logged[1]).toMatchObject({ dropped_since_last_line: 1 });
  });
  test("dead letters decided at the same moment share one depth answer and do not all see room", async () => {
    const t = setup(1, 3);
    const results = await Promise.all(Array.from({ length: 5 }, (_, i) => t.dlq.send(t.msg, `r${i}`, 1)));
    expect(results).toEqual(["sent", "sent", "dropped", "dropped", "dropped"]);
    expect(t.asked()).toBe(1);
  });
  test("the depth is asked at most once a second", async () => {
    const t = setup(0, 1000);
    for (let i = 0; i < 10; i++) await t.dlq.send(t.msg, "x", 1);
    expect(t.asked()).toBe(1);
    t.tick(1000);
    await t.dlq.send(t.msg, "x", 1);
    expect(t.asked()).toBe(2);
  });
  test("metric labels come from a fixed set", () => {
    expect(routingKeyPrefix("status.backup.9")).toBe("status.backup");
    expect(routingKeyPrefix("anything.else.at.all")).toBe("other");
  });
});
