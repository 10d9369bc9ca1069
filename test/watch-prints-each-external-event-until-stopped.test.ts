/**
 * `manman-processor watch` against a running processor: the events it
 * publishes on the external exchange appear as readable lines or JSON
 * lines, filtered by the pattern; Ctrl-C and SIGTERM end it with status 0
 * and its queue goes with it.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { AMQPClient, type AMQPChannel } from "@cloudamqp/amqp-client";
import { insertServer, insertSession, startProcessor, testWorld, waitFor, type RunningProcessor } from "./support/processor.ts";
import { MAIN, runCli } from "./support/cli.ts";

const exec = promisify(execFile);
let world: Awaited<ReturnType<typeof testWorld>>;
let processor: RunningProcessor;
let client: AMQPClient;
let ch: AMQPChannel;

beforeAll(async () => {
  world = await testWorld("watch");
  processor = await startProcessor(world.vhost, world.db, { LOG_LEVEL: "warn" });
  client = new AMQPClient(world.vhost.url);
  await client.connect();
  ch = await client.channel();
}, 60_000);

afterAll(async () => {
  await client?.close().catch(() => {});
  await processor?.stop();
  await world?.remove();
});

/** A running `watch`, its output collected as it comes. */
function watch(args: string[]) {
  const proc = Bun.spawn([process.execPath, MAIN, "watch", ...args], {
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", RABBITMQ_URL: world.vhost.url },
    stdout: "pipe",
    stderr: "pipe",
  });
  const out = { stdout: "", stderr: "" };
  const collect = async (stream: ReadableStream<Uint8Array>, key: "stdout" | "stderr") => {
    const decoder = new TextDecoder();
    const reader = stream.getReader();
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) out[key] += decoder.decode(chunk.value);
  };
  const done = Promise.all([collect(proc.stdout, "stdout"), collect(proc.stderr, "stderr")]);
  return { proc, out, done, lines: () => out.stdout.split("\n").filter(Boolean) };
}

/** Its own queues on the vhost: server-named ones are the watchers'. */
async function serverNamedQueues(): Promise<string[]> {
  const { stdout } = await exec("rabbitmqctl", ["-q", "list_queues", "-p", world.vhost.vhost, "--no-table-headers", "name"]);
  return stdout.split("\n").filter((n) => n.startsWith("amq.gen-"));
}

test("text and --json watchers print each event as it is published, the pattern filters, and SIGINT / SIGTERM end them with status 0", async () => {
  const text = watch([]);
  const json = watch(["manman.session.#", "--json"]);
  await waitFor(() => text.out.stderr.includes("watching exchange external for manman.# (Ctrl-C to stop)") && json.out.stderr.includes("for manman.session.#"), 15_000, "both watching");
  expect(await serverNamedQueues()).toHaveLength(2);

  const serverId = await insertServer(world.sql, "watched-host");
  const sessionId = await insertSession(world.sql, 4);
  await ch.basicPublish("manman", `status.host.${serverId}`, JSON.stringify({ server_id: serverId, status: "online" }));
  await ch.basicPublish("manman", `status.session.${sessionId}`, JSON.stringify({ session_id: sessionId, sgc_id: 4, status: "starting" }));
  await ch.basicPublish("manman", `status.session.${sessionId}`, JSON.stringify({ session_id: sessionId, sgc_id: 4, status: "running" }));
  await ch.basicPublish("manman", `status.session.${sessionId}`, JSON.stringify({ session_id: sessionId, sgc_id: 4, status: "crashed", exit_code: 137 }));
  await waitFor(() => text.lines().length >= 3 && json.lines().length >= 2, 15_000, "events printed");
  await Bun.sleep(300);

  const time = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ {2}/;
  expect(text.lines().every((l) => time.test(l))).toBe(true);
  // The host's and the session's events are applied concurrently: only each one's own order is kept.
  const printed = text.lines().map((l) => l.replace(time, ""));
  expect(printed.filter((l) => l.startsWith("manman.host."))).toEqual([`manman.host.online  server_id=${serverId} status=online`]);
  expect(printed.filter((l) => l.startsWith("manman.session."))).toEqual([
    `manman.session.running  session_id=${sessionId} sgc_id=4 status=running`,
    // log_tail: the session's last lines (none were logged here; docs/events.md)
    `manman.session.crashed  session_id=${sessionId} sgc_id=4 status=crashed exit_code=137 log_tail=[]`,
  ]);
  expect(printed).toHaveLength(3);
  const objects = json.lines().map((l) => JSON.parse(l));
  expect(objects.map((o) => o.routing_key)).toEqual(["manman.session.running", "manman.session.crashed"]);
  expect(objects[1]).toMatchObject({ body: { session_id: sessionId, sgc_id: 4, status: "crashed", exit_code: 137 } });
  for (const o of objects) expect(Math.abs(Date.parse(o.timestamp) - Date.now())).toBeLessThan(60_000);

  text.proc.kill("SIGINT");
  json.proc.kill("SIGTERM");
  expect(await text.proc.exited).toBe(0);
  expect(await json.proc.exited).toBe(0);
  await Promise.all([text.done, json.done]);
  await waitFor(async () => (await serverNamedQueues()).length === 0, 10_000, "watch queues gone");
}, 60_000);

test("a broker that is not there fails with status 1 after a bounded wait", async () => {
  const r = await runCli(["watch"], { RABBITMQ_URL: "amqp://guest:guest@127.0.0.1:1/x" });
  expect(r.code).toBe(1);
  expect(r.stderr).toContain("watch failed: could not connect to the broker amqp://127.0.0.1:1/x: no connection within 10 s");
}, 60_000);
