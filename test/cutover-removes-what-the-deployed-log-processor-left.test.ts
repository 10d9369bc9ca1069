/**
 * `manman-processor cutover` against the real broker and database: the
 * queues the deployed log-processor declares (UPSTREAM.md §5), built here
 * with its exact arguments and bindings, are removed; our own running
 * processor's queues and unrelated queues are not.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { AMQPClient, type AMQPChannel } from "@cloudamqp/amqp-client";
import { insertSession, startProcessor, testWorld, waitFor, type RunningProcessor } from "./support/processor.ts";
import { spawnService } from "./support/subprocess.ts";

const exec = promisify(execFile);

let world: Awaited<ReturnType<typeof testWorld>>;
let processor: RunningProcessor;
let client: AMQPClient;
let ch: AMQPChannel;
let live: number, ended: number, neverFollowed: number;

const LIFECYCLE = "log-processor-lifecycle";
const LIFECYCLE_DLQ = "log-processor-lifecycle-dlq";
// A session queue whose session row is gone: cutover cannot know its name.
const ORPHAN = "logs.session.987654321";
const UNRELATED = "billing-audit";

beforeAll(async () => {
  world = await testWorld("cutover");
  // Ours runs beside the leftovers, as it does during a real cutover.
  processor = await startProcessor(world.vhost, world.db, { LOG_LEVEL: "warn" });
  live = await insertSession(world.sql, 3, "running");
  ended = await insertSession(world.sql, 4, "stopped");
  neverFollowed = await insertSession(world.sql, 5, "running");

  client = new AMQPClient(world.vhost.url);
  await client.connect();
  ch = await client.channel();
  await ch.confirmSelect();
  // As the deployed log-processor declares them (LP/lifecycle/handler.go, L/consumer.go).
  await ch.queueDeclare(LIFECYCLE, { durable: true, autoDelete: false }, { "x-dead-letter-exchange": "", "x-dead-letter-routing-key": LIFECYCLE_DLQ });
  await ch.queueDeclare(LIFECYCLE_DLQ, { durable: true, autoDelete: false });
  for (const key of ["manman.session.running", "manman.session.stopped", "manman.session.crashed"]) await ch.queueBind(LIFECYCLE, "external", key);
  for (const id of [live, ended, 987654321]) {
    const name = `logs.session.${id}`;
    await ch.queueDeclare(name, { durable: true, autoDelete: false }, { "x-message-ttl": 180_000, "x-max-length": 500, "x-overflow": "drop-head" });
    await ch.queueBind(name, "manman", name);
  }
  await ch.queueDeclare(UNRELATED, { durable: true, autoDelete: false });

  const line = (id: number, message: string) => JSON.stringify({ session_id: id, timestamp: Date.now(), source: "stdout", message });
  for (let i = 0; i < 3; i++) await ch.basicPublish("manman", `logs.session.${live}`, line(live, `line ${i}`), { deliveryMode: 2 });
  await ch.basicPublish("manman", ORPHAN, line(987654321, "orphan"), { deliveryMode: 2 });
  for (let i = 0; i < 2; i++) await ch.basicPublish("", LIFECYCLE, JSON.stringify({ session_id: live, status: "running" }), { deliveryMode: 2 });
  await ch.basicPublish("", LIFECYCLE_DLQ, "{}", { deliveryMode: 2 });
  await ch.basicPublish("", UNRELATED, "{}", { deliveryMode: 2 });
  await waitFor(async () => (await queues()).get(`logs.session.${live}`)?.messages === 3, 10_000, "messages counted");
}, 60_000);

afterAll(async () => {
  await client?.close().catch(() => {});
  await processor?.stop();
  await world?.remove();
});

/** Every queue of the test vhost, as the broker itself reports it. */
async function queues(): Promise<Map<string, { messages: number; consumers: number }>> {
  const { stdout } = await exec("rabbitmqctl", ["-q", "list_queues", "-p", world.vhost.vhost, "--no-table-headers", "name", "messages", "consumers"]);
  const out = new Map<string, { messages: number; consumers: number }>();
  for (const row of stdout.trim().split("\n").filter(Boolean)) {
    const [name, messages, consumers] = row.split("\t");
    out.set(name!, { messages: Number(messages), consumers: Number(consumers) });
  }
  return out;
}

/** Our own queues' names, with message counts left out (the log ingest's move all the time). */
function ours(q: Map<string, unknown>): string[] {
  return [...q.keys()].filter((n) => n.startsWith("processor-events") || n.startsWith("manman-processor.")).sort();
}

async function cutover(args: string[], env: Record<string, string> = {}) {
  const proc = spawnService({ RABBITMQ_URL: world.vhost.url, DATABASE_URL: world.db.url, ...env }, ["cutover", ...args]);
  const code = await proc.exited;
  const stdout = proc.lines.flatMap((l) => (typeof l.raw === "string" ? [l.raw] : []));
  const stderr = proc.lines.map((l) => String(l.stderr ?? "")).join("");
  return { code, stdout, stderr };
}

const leftovers = () => [LIFECYCLE, LIFECYCLE_DLQ, `logs.session.${live}`, `logs.session.${ended}`];

test("cutover refuses while the deployed log-processor still consumes its queues, removing nothing", async () => {
  const consumer = await client.channel();
  await consumer.basicConsume(LIFECYCLE, { noAck: false }, () => {});
  try {
    const before = await queues();
    const r = await cutover([]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${LIFECYCLE} has 1 consumer`);
    expect(r.stderr).toContain("still seems to be running");
    const after = await queues();
    for (const name of leftovers()) expect(after.has(name)).toBe(true);
    expect(after.size).toBe(before.size);
  } finally {
    await consumer.close();
  }
  // The unacked messages went back to the queue with the consumer.
  await waitFor(async () => (await queues()).get(LIFECYCLE)?.consumers === 0, 10_000, "consumer gone");
}, 60_000);

test("--dry-run lists exactly the leftovers with their messages and changes nothing", async () => {
  const before = await queues();
  const r = await cutover(["--dry-run"]);
  expect(r.code).toBe(0);
  expect(r.stdout).toEqual([
    `would remove ${LIFECYCLE} (2 messages)`,
    `would remove ${LIFECYCLE_DLQ} (1 message)`,
    `would remove logs.session.${live} (3 messages)`,
    `would remove logs.session.${ended} (0 messages)`,
    `dry run: would remove 4 queues holding 6 messages; nothing was changed (checked ${LIFECYCLE}, ${LIFECYCLE_DLQ} and the logs.session.<id> queues of 3 sessions)`,
  ]);
  expect(r.stderr).toBe("");
  const after = await queues();
  expect(ours(after)).toEqual(ours(before));
  for (const name of [...leftovers(), ORPHAN, UNRELATED]) expect(after.get(name)).toEqual(before.get(name)!);
}, 60_000);

test("the real run removes exactly the leftovers of known sessions; ours and unrelated queues stay; a second run removes nothing", async () => {
  const before = await queues();
  const r = await cutover([]);
  expect(r.code).toBe(0);
  expect(r.stdout.slice(0, 4)).toEqual([
    `removed ${LIFECYCLE} (2 messages)`,
    `removed ${LIFECYCLE_DLQ} (1 message)`,
    `removed logs.session.${live} (3 messages)`,
    `removed logs.session.${ended} (0 messages)`,
  ]);
  expect(r.stdout[4]).toStartWith("removed 4 queues holding 6 messages");
  expect(r.stderr).toBe("");

  const after = await queues();
  for (const name of leftovers()) expect(after.has(name)).toBe(false);
  expect(after.has(`logs.session.${neverFollowed}`)).toBe(false);
  expect(after.get(ORPHAN)).toEqual(before.get(ORPHAN)!);
  expect(after.get(UNRELATED)).toEqual({ messages: 1, consumers: 0 });
  expect(ours(after)).toEqual(ours(before));
  expect(ours(after)).toContain("processor-events");
  expect(ours(after)).toContain("processor-events-dlq");
  expect(ours(after).some((n) => n.startsWith("manman-processor.logs."))).toBe(true);
  expect(after.get("processor-events")!.consumers).toBe(1);
  expect((await fetch(processor.url("/readyz"))).status).toBe(200);

  const again = await cutover([]);
  expect(again.code).toBe(0);
  expect(again.stdout).toHaveLength(1);
  expect(again.stdout[0]).toStartWith("nothing to remove:");
  expect([...(await queues()).keys()].sort()).toEqual([...after.keys()].sort());
}, 60_000);

test("an unreachable database fails with status 1 and says which database, without its password", async () => {
  const r = await cutover([], { DATABASE_URL: "postgres://postgres:s3cret@127.0.0.1:1/manman" });
  expect(r.code).toBe(1);
  expect(r.stderr).toContain("cutover failed: could not read the sessions from the database postgres://127.0.0.1:1/manman");
  expect(r.stderr).toContain("ECONNREFUSED");
  expect(r.stderr).not.toContain("s3cret");
}, 60_000);

test("an unreachable broker fails with status 1 after a bounded wait, without its password", async () => {
  const started = Date.now();
  const r = await cutover([], { RABBITMQ_URL: "amqp://guest:s3cret@127.0.0.1:1/prod" });
  expect(r.code).toBe(1);
  expect(Date.now() - started).toBeLessThan(30_000);
  expect(r.stderr).toContain("cutover failed: could not connect to the broker amqp://127.0.0.1:1/prod: no connection within 10 s");
  expect(r.stderr).not.toContain("s3cret");
}, 60_000);
