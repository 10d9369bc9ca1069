/**
 * `manman-processor dlq` against the real broker and a running processor:
 * real dead letters (sessions that do not exist yet, a body that is not
 * JSON) are listed and shown without being moved, replayed once their cause
 * is fixed (the processor then applies them), and purged only when
 * confirmed.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { AMQPClient, type AMQPChannel } from "@cloudamqp/amqp-client";
import { startProcessor, testWorld, waitFor, type RunningProcessor } from "./support/processor.ts";
import { runCli, runCliOnTerminal } from "./support/cli.ts";

let world: Awaited<ReturnType<typeof testWorld>>;
let processor: RunningProcessor;
let client: AMQPClient;
let ch: AMQPChannel;
let env: Record<string, string>;
const DLQ = "processor-events-dlq";
// Session ids no row has yet: their messages are dead-lettered until the rows exist.
const MISSING = [910001, 910002, 910003];

const depth = async () => (await ch.queueDeclare(DLQ, { passive: true })).messageCount;

interface Listed {
  position: number;
  age_seconds: number;
  routing_key: string;
  reason: string;
  attempts: number;
  exchange: string;
}
async function listJson(): Promise<{ queue: string; count: number; messages: Listed[] }> {
  const r = await runCli(["dlq", "list", "--json"], env);
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout);
}

beforeAll(async () => {
  world = await testWorld("dlqtool");
  processor = await startProcessor(world.vhost, world.db, { LOG_LEVEL: "warn" });
  env = { RABBITMQ_URL: world.vhost.url };
  client = new AMQPClient(world.vhost.url);
  await client.connect();
  ch = await client.channel();
  await ch.confirmSelect();
  const publish = (key: string, body: string) => ch.basicPublish("manman", key, body, { contentType: "application/json", deliveryMode: 2 });
  for (const id of MISSING) await publish(`status.session.${id}`, JSON.stringify({ session_id: id, sgc_id: 1, status: "starting" }));
  await publish("status.host.77", "{not json");
  await waitFor(async () => (await depth()) === 4, 20_000, "four dead letters");
}, 60_000);

afterAll(async () => {
  await client?.close().catch(() => {});
  await processor?.stop();
  await world?.remove();
});

test("list prints the count, then each message's age, original routing key, attempts and reason; the queue is left as it was, in the same order", async () => {
  const r = await runCli(["dlq", "list"], env);
  expect(r.code).toBe(0);
  expect(r.stderr).toBe("");
  const lines = r.stdout.trimEnd().split("\n");
  expect(lines[0]).toBe(`${DLQ}: 4 messages`);
  expect(lines[1]).toMatch(/^#\s+AGE\s+ATTEMPTS\s+ROUTING KEY\s+REASON$/);
  expect(lines).toHaveLength(6);
  for (const id of MISSING) expect(lines.some((l) => /^\d\s+\d+s\s+1\s+/.test(l) && l.includes(`status.session.${id}`) && l.endsWith(`session ${id} does not exist`))).toBe(true);
  expect(lines.some((l) => l.includes("status.host.77") && l.includes("not JSON"))).toBe(true);

  const first = await listJson();
  const again = await listJson();
  expect(first.count).toBe(4);
  expect(first.messages.map((m) => m.position)).toEqual([1, 2, 3, 4]);
  expect(again.messages.map((m) => m.routing_key)).toEqual(first.messages.map((m) => m.routing_key));
  for (const m of first.messages) expect(m).toMatchObject({ exchange: "manman", attempts: 1 });
  for (const m of first.messages) expect(m.age_seconds).toBeLessThan(60);
  expect(await depth()).toBe(4);
}, 60_000);

test("show N prints the Nth message: its headers and body", async () => {
  const { messages } = await listJson();
  const host = messages.find((m) => m.routing_key === "status.host.77")!;
  const r = await runCli(["dlq", "show", String(host.position)], env);
  expect(r.code).toBe(0);
  const lines = r.stdout.trimEnd().split("\n");
  expect(lines[0]).toBe(`message ${host.position} of 4 in ${DLQ}`);
  expect(r.stdout).toContain("routing key:    status.host.77 (replay sends it to exchange manman)");
  expect(r.stdout).toContain("  x-original-routing-key: status.host.77");
  expect(r.stdout).toMatch(/ {2}x-dead-lettered-at: \d{4}-\d\d-\d\dT/);
  expect(lines.at(-2)).toBe("body (9 bytes):");
  expect(lines.at(-1)).toBe("{not json");

  const json = await runCli(["dlq", "show", String(host.position), "--json"], env);
  expect(JSON.parse(json.stdout)).toMatchObject({ routing_key: "status.host.77", body: "{not json", headers: { "x-death-reason": host.reason } });
  const past = await runCli(["dlq", "show", "5"], env);
  expect(past.code).toBe(1);
  expect(past.stderr).toContain(`${DLQ} has no message 5 (it holds 4 messages)`);
  expect(await depth()).toBe(4);
}, 60_000);

test("once the cause is fixed, replay --match republishes those to manman and the processor applies them; the rest stay", async () => {
  for (const id of MISSING) await world.sql`INSERT INTO sessions (session_id, sgc_id, status) VALUES (${id}, 1, 'pending')`;
  const r = await runCli(["dlq", "replay", "--match", "status.session.*", "--limit", "2"], env);
  expect(r.code).toBe(0);
  expect(r.stdout.split("\n").filter((l) => l.startsWith("replayed #"))).toHaveLength(2);
  expect(r.stdout).toContain(`replayed 2 messages from ${DLQ} (--match status.session.* --limit 2)`);
  expect(await depth()).toBe(2);

  const rest = await runCli(["dlq", "replay", "--match", "status.session.*"], env);
  expect(rest.code).toBe(0);
  expect(rest.stdout).toContain(`replayed 1 message from ${DLQ}`);
  await waitFor(async () => {
    const rows = await world.sql<{ status: string }[]>`SELECT status FROM sessions WHERE session_id IN ${world.sql(MISSING)}`;
    return rows.every((row) => row.status === "starting");
  }, 20_000, "replayed sessions applied");
  const left = await listJson();
  expect(left.messages.map((m) => m.routing_key)).toEqual(["status.host.77"]);
}, 60_000);

test("purge refuses without a terminal or --yes, asks on a terminal (no keeps them, yes deletes), and --yes deletes what matches", async () => {
  const refused = await runCli(["dlq", "purge"], env);
  expect(refused.code).toBe(2);
  expect(refused.stderr).toContain("refusing to delete without --yes");
  expect(await depth()).toBe(1);

  const no = await runCliOnTerminal(["dlq", "purge"], env, "no\n", 1500);
  expect(no.stdout).toContain(`Delete 1 message of 1 in ${DLQ} for good? Type yes to go ahead:`);
  expect(no.stdout).toContain("nothing purged (not confirmed)");
  expect(no.code).toBe(1);
  expect(await depth()).toBe(1);

  const nothing = await runCli(["dlq", "purge", "--yes", "--reason", "no such reason"], env);
  expect(nothing.code).toBe(0);
  expect(nothing.stdout).toContain("nothing to purge");
  expect(await depth()).toBe(1);

  const yes = await runCliOnTerminal(["dlq", "purge", "--match", "status.host.*"], env, "yes\n", 1500);
  expect(yes.code).toBe(0);
  expect(yes.stdout).toContain(`purged 1 message of 1 in ${DLQ} (--match status.host.*)`);
  expect(await depth()).toBe(0);

  const empty = await runCli(["dlq", "list"], env);
  expect(empty.stdout).toBe(`${DLQ}: 0 messages\n`);
}, 60_000);

test("a broker that is not there fails with status 1 after a bounded wait, without its password", async () => {
  const r = await runCli(["dlq", "list"], { RABBITMQ_URL: "amqp://guest:s3cret@127.0.0.1:1/x" });
  expect(r.code).toBe(1);
  expect(r.stderr).toContain("dlq list failed: could not connect to the broker amqp://127.0.0.1:1/x: no connection within 10 s");
  expect(r.stderr).not.toContain("s3cret");
}, 60_000);
