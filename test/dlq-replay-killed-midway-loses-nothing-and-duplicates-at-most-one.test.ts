/**
 * `dlq replay` killed with SIGKILL in the middle of 3,000 dead letters:
 * every message is afterwards either still in the dead-letter queue, in its
 * original order, or republished to the event queue; at most one (the one
 * in flight) is in both. Running replay again finishes the job, on a
 * terminal with its one updating progress line. No processor runs here, so
 * the event queue keeps what was replayed for counting.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { AMQPClient, type AMQPChannel } from "@cloudamqp/amqp-client";
import { createVhost, type TestVhost } from "./support/services.ts";
import { MAIN, runCli, runCliOnTerminal } from "./support/cli.ts";
import { waitFor } from "./support/processor.ts";

const N = 3000;
const EVENTS = "processor-events";
const DLQ = "processor-events-dlq";
let vhost: TestVhost;
let client: AMQPClient;
let ch: AMQPChannel;

const depth = async (queue: string) => (await ch.queueDeclare(queue, { passive: true })).messageCount;
const indexOf = (key: string) => Number(key.split(".").at(-1));

/** The dead-letter queue's messages in order, as `dlq list --json` reads them (and leaves them). */
async function dlqOrder(): Promise<number[]> {
  const r = await runCli(["dlq", "list", "--json"], { RABBITMQ_URL: vhost.url });
  expect(r.code).toBe(0);
  return (JSON.parse(r.stdout).messages as { routing_key: string }[]).map((m) => indexOf(m.routing_key));
}

/** Takes every message out of the event queue; returns their indexes. */
async function drainEvents(): Promise<number[]> {
  const out: number[] = [];
  for (let m = await ch.basicGet(EVENTS, { noAck: true }); m; m = await ch.basicGet(EVENTS, { noAck: true })) out.push(JSON.parse(m.bodyString()!).n);
  return out;
}

beforeAll(async () => {
  vhost = await createVhost("dlqkill");
  client = new AMQPClient(vhost.url);
  await client.connect();
  ch = await client.channel();
  await ch.confirmSelect();
  // The processor's topology (amqp/topology.ts), and N dead letters as amqp/dead-letter.ts writes them.
  await ch.exchangeDeclare("manman", "topic", { durable: true });
  await ch.queueDeclare(EVENTS, { durable: true }, { "x-dead-letter-exchange": "", "x-dead-letter-routing-key": DLQ });
  await ch.queueBind(EVENTS, "manman", "status.session.#");
  await ch.queueDeclare(DLQ, { durable: true });
  const at = new Date().toISOString();
  const sends: Promise<unknown>[] = [];
  for (let i = 1; i <= N; i++) {
    const headers = { "x-death-reason": `session ${i} does not exist`, "x-attempts": 1, "x-original-exchange": "manman", "x-original-routing-key": `status.session.${i}`, "x-dead-lettered-at": at };
    sends.push(ch.basicPublish("", DLQ, JSON.stringify({ session_id: i, sgc_id: 1, status: "starting", n: i }), { headers, deliveryMode: 2, contentType: "application/json" }));
  }
  await Promise.all(sends);
  expect(await depth(DLQ)).toBe(N);
}, 60_000);

afterAll(async () => {
  await client?.close().catch(() => {});
  await vhost?.remove();
});

test("SIGKILL midway: each message is in the dead-letter queue (in order) or republished, at most one in both; a second run finishes on a terminal", async () => {
  const proc = Bun.spawn([process.execPath, MAIN, "dlq", "replay"], {
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", RABBITMQ_URL: vhost.url },
    stdout: "pipe",
    stderr: "pipe",
  });
  // Killed once a few hundred have gone, far from the start and the end;
  // its output is read to the end, so it never stalls on a full pipe.
  let replayed = 0;
  let atKill = 0;
  const decoder = new TextDecoder();
  const reader = proc.stdout.getReader();
  for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
    replayed += decoder.decode(chunk.value).split("\n").filter((l) => l.startsWith("replayed #")).length;
    if (atKill === 0 && replayed >= 500) {
      atKill = replayed;
      proc.kill("SIGKILL");
    }
  }
  expect(await proc.exited).not.toBe(0);
  expect(proc.signalCode).toBe("SIGKILL");
  expect(replayed).toBeLessThan(N);

  // The broker returns what the dead connection held; wait for the counts to add up.
  await waitFor(async () => (await depth(DLQ)) + (await depth(EVENTS)) >= N, 10_000, "held messages back");
  const left = await dlqOrder();
  const republished = await drainEvents();
  const both = republished.filter((n) => left.includes(n));
  expect(both.length).toBeLessThanOrEqual(1);
  expect(new Set([...left, ...republished]).size).toBe(N);
  expect(republished.length).toBeGreaterThanOrEqual(500);
  // Replay goes from the head, one at a time: what is left is the tail, in its original order.
  expect(left).toEqual(Array.from({ length: left.length }, (_, i) => N - left.length + 1 + i));
  expect(republished).toEqual(Array.from({ length: republished.length }, (_, i) => i + 1));

  const rest = await runCliOnTerminal(["dlq", "replay"], { RABBITMQ_URL: vhost.url, COLUMNS: "100" });
  expect(rest.code).toBe(0);
  // The progress line, redrawn in place, then the summary.
  expect(rest.stdout).toMatch(/\r\x1b\[2Kreplaying: read \d+ of \d+ \d+%, replayed \d+/);
  expect(rest.stdout).toContain(`replayed ${left.length} messages from ${DLQ}`);
  expect(await depth(DLQ)).toBe(0);
  const second = await drainEvents();
  expect(second).toEqual(left);
  const all = [...republished, ...second];
  expect(all.length - new Set(all).size).toBeLessThanOrEqual(1);
  expect(new Set(all).size).toBe(N);
}, 60_000);

test("piped, replay prints one plain line per message and no control characters", async () => {
  const headers = { "x-death-reason": "r", "x-original-exchange": "manman", "x-original-routing-key": "status.session.1" };
  await ch.basicPublish("", DLQ, JSON.stringify({ n: 1 }), { headers, deliveryMode: 2 });
  const r = await runCli(["dlq", "replay"], { RABBITMQ_URL: vhost.url });
  expect(r.code).toBe(0);
  expect(r.stdout).toBe(`replayed #1 status.session.1 -> manman (r)\nreplayed 1 message from ${DLQ}\n`);
  expect(r.stderr).toBe("");
  expect(await drainEvents()).toEqual([1]);
}, 60_000);
