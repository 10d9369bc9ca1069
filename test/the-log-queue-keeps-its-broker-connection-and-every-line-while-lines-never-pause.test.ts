/**
 * The log queue is consumed without acks, so its connection sends the
 * broker nothing while lines arrive; and RabbitMQ sends no heartbeat of its
 * own while it has deliveries to send, which were all amqp-client answered.
 * Before the client sent heartbeats itself, RabbitMQ closed such a
 * connection ("missed heartbeats from client") three intervals after the
 * lines started, and the lines published until the exclusive queue was
 * declared again were lost (bench:logs lost ~265 lines each time;
 * docs/logs.md, Benchmark). Here lines never pause for well over three
 * intervals: the connection stays, and every line arrives.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { AMQPClient } from "@cloudamqp/amqp-client";
import { connectBroker, type BrokerSession } from "../src/amqp/connection.ts";
import { LOG_EXCHANGE, logQueue } from "../src/amqp/log-queue.ts";
import { silentLogger } from "../src/log.ts";
import { Metrics } from "../src/metrics.ts";
import { createVhost, waitFor, type TestVhost } from "./support/services.ts";

// 3 s heartbeats: without the fix RabbitMQ closes the connection ~9 s in
// (three intervals); lines for 21 s (seven) would see that at least twice,
// while a stall of this test process up to ~6 s (two intervals) is tolerated.
const HEARTBEAT_SECONDS = 3;
const STREAM_MS = 7 * HEARTBEAT_SECONDS * 1000;
// 50 ms between lines: RabbitMQ heartbeats after half an interval (1.5 s) of
// sending nothing else, so it never does here, as on a busy fleet.
const EVERY_MS = 50;

let vhost: TestVhost;
beforeAll(async () => {
  vhost = await createVhost("mmheartbeat");
});
afterAll(async () => {
  await vhost.remove();
});

test("a log queue whose lines never pause keeps its broker connection, and every line arrives", async () => {
  const controller = new AbortController();
  const metrics = new Metrics();
  let received = 0;
  let reattach = async () => {};
  const session: BrokerSession = await connectBroker({ url: vhost.url, logger: silentLogger, signal: controller.signal, metrics, heartbeatSeconds: HEARTBEAT_SECONDS, onConnect: () => reattach() });
  const queue = logQueue({ session, maxLength: 100_000, messageTtlMs: 180_000, onMessage: () => void received++, logger: silentLogger, signal: controller.signal });
  reattach = queue.reattach;
  await queue.reattach();
  const publisher = await new AMQPClient(vhost.url).connect();
  try {
    const ch = await publisher.channel();
    let published = 0;
    const start = Date.now();
    while (Date.now() - start < STREAM_MS) {
      await ch.basicPublish(LOG_EXCHANGE, "logs.session.1", JSON.stringify({ session_id: 1, timestamp: Date.now(), source: "stdout", message: `line ${published}` }));
      published++;
      await Bun.sleep(EVERY_MS);
    }
    // Every line, or a lost connection (then some never come).
    await waitFor(() => received === published || metrics.total("manman_broker_disconnects_total") > 0, 30_000, "every line, or a disconnect");
    expect(metrics.total("manman_broker_disconnects_total")).toBe(0);
    await waitFor(() => received === published, 30_000, `all ${published} lines (got ${received})`);
  } finally {
    controller.abort();
    await publisher.close().catch(() => {});
    await queue.close();
    await session.stop();
  }
}, 90_000);
