/**
 * 100,000 random and mutated event bodies (valid JSON, broken JSON, huge
 * numbers, deep nesting, `__proto__`, random bytes, unknown routing keys)
 * through the real consumer: the service never crashes and stays ready;
 * every message is settled exactly once; each valid one is applied (or
 * judged stale), never dead-lettered; each refusal is dead-lettered with a
 * reason.
 */
import { expect, setDefaultTimeout, test } from "bun:test";
import { AMQPClient } from "@cloudamqp/amqp-client";
import { insertServer, insertSession, useProcessor, waitFor } from "./support/processor.ts";
import { fuzzCases } from "./support/fuzz-bodies.ts";

setDefaultTimeout(180_000);
const COUNT = 100_000;
const f = useProcessor("fuzz", { LOG_LEVEL: "error" });

test("100,000 fuzzed bodies: no crash, every valid one applied, every refusal dead-lettered with its reason", async () => {
  const servers = await Promise.all(Array.from({ length: 20 }, (_, i) => insertServer(f.world.sql, `fuzz-${i}`)));
  // Sessions already starting: a valid move is then an advance, a keepalive or stale, never an early pending -> running.
  const sessions = await Promise.all(Array.from({ length: 20 }, (_, i) => insertSession(f.world.sql, 500 + i, "starting")));
  const cases = fuzzCases(COUNT, 7, { servers, sessions });
  const identity = (key: string, body: string) => `${key} ${body}`;
  const valid = new Set(cases.filter((c) => c.valid).map((c) => identity(c.routingKey, Buffer.from(c.body).toString("latin1"))));

  const client = new AMQPClient(f.world.vhost.url);
  await client.connect();
  const ch = await client.channel();
  await ch.confirmSelect();
  // Confirmed in windows of 1,000: fast, and the broker never buffers more than that from us.
  for (let i = 0; i < cases.length; i += 1000) {
    await Promise.all(cases.slice(i, i + 1000).map((c) => ch.basicPublish("manman", c.routingKey, c.body, { deliveryMode: 2 })));
  }
  await client.close();

  const metrics = f.processor.service.metrics;
  // Unroutable keys never reach the queue: count only what was routed.
  // The bindings status.{host,session,backup}.# and health.# (`#` matches zero words too).
  const bound = (key: string) => {
    const [a, b] = key.split(".");
    return a === "health" || (a === "status" && ["host", "session", "backup"].includes(b ?? ""));
  };
  const routed = cases.filter((c) => bound(c.routingKey)).length;
  await waitFor(() => metrics.total("manman_event_messages_total") >= routed, 150_000, "every routed message settled");
  expect(metrics.total("manman_event_messages_total")).toBe(routed);
  await waitFor(() => f.peer.deadLettered.length === metrics.total("manman_event_messages_dead_lettered_total"), 30_000, "dead letters received");

  for (const d of f.peer.deadLettered) {
    expect(String(d.headers["x-death-reason"] ?? "").length).toBeGreaterThan(0);
  }
  const deadValid = f.peer.deadLettered.filter((d) => valid.has(identity(d.routingKey, Buffer.from(d.body, "utf8").toString("latin1"))));
  expect(deadValid.map((d) => `${d.routingKey} ${d.body}: ${String(d.headers["x-death-reason"])}`)).toEqual([]);
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  expect((await fetch(f.processor.url("/readyz"))).status).toBe(200);
});
