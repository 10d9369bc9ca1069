/**
 * Two processes on the same vhost each consume their own queue, so each
 * streams every line (the deployed log processor split them). A process
 * whose broker connection drops declares its queue again and goes on.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { createVhost, waitFor, type TestVhost } from "../support/services.ts";
import { hostManager, range, seqs, startLogStack, texts, watch, type HostManager, type LogStack } from "./support.ts";

// Real broker on a possibly busy 2-core machine: generous, but not hiding hangs.
setDefaultTimeout(60_000);
const run = promisify(execFile);

let vhost: TestVhost;
let a: LogStack;
let b: LogStack;
let hm: HostManager;

beforeAll(async () => {
  vhost = await createVhost("mmlogrepl");
  [a, b] = await Promise.all([startLogStack(vhost.url), startLogStack(vhost.url)]);
  hm = await hostManager(vhost.url);
});

afterAll(async () => {
  await hm?.close();
  await a?.stop();
  await b?.stop();
  await vhost?.remove();
});

test("two processes on the same vhost both stream every line", async () => {
  expect(a.ingest.queueName).not.toBe(b.ingest.queueName);
  const s = 42;
  const wa = watch(a.client("grpc"), s);
  const wb = watch(b.client("connect"), s);
  await waitFor(() => a.hub.subscriberCount(s) === 1 && b.hub.subscriberCount(s) === 1, 20_000, "subscribed on both");
  for (const i of range(1, 200)) await hm.line(s, `line ${i}`);
  await waitFor(() => wa.got.length === 200 && wb.got.length === 200, 30_000, "both got 200 lines");
  for (const w of [wa, wb]) {
    expect(seqs(w.got)).toEqual(range(1, 200));
    expect(texts(w.got)).toEqual(range(1, 200).map((i) => `line ${i}`));
    w.stop();
  }
});

test("after the broker drops the connection, the queue is declared again and lines flow", async () => {
  const s = 43;
  await hm.line(s, "before");
  await waitFor(() => a.hub.stats().lines > 0 && a.ingest.ingested() >= 201, 20_000, "first line");
  const w = watch(a.client("grpc-web"), s);
  await waitFor(() => w.got.length === 1, 20_000, "backlog");
  // Closes every connection of this vhost: both replicas and the test publisher.
  await run("rabbitmqctl", ["-q", "close_all_connections", "-p", vhost.vhost, "test: simulated broker restart"]);
  await waitFor(() => !a.ingest.attached(), 20_000, "detached");
  await waitFor(() => a.ingest.attached() && b.ingest.attached(), 30_000, "attached again");
  await hm.close();
  hm = await hostManager(vhost.url);
  await hm.line(s, "after");
  // The open stream did not notice: the hub and its streams outlive connections.
  await waitFor(() => w.got.length === 2, 20_000, "line after reconnect");
  expect(texts(w.got)).toEqual(["before", "after"]);
  expect(seqs(w.got)).toEqual([1, 2]);
  w.stop();
});

test("a log queue deleted under a running process is declared again and lines flow", async () => {
  const s = 44;
  const w = watch(b.client("connect"), s);
  await waitFor(() => b.hub.subscriberCount(s) === 1, 20_000, "subscribed");
  await run("rabbitmqctl", ["-q", "delete_queue", "-p", vhost.vhost, b.ingest.queueName]);
  await waitFor(() => b.logs.some((l) => String(l.msg).includes("cancelled the log consumer")), 20_000, "noticed");
  await waitFor(() => b.ingest.attached(), 20_000, "attached again");
  await hm.line(s, "after the queue came back");
  await waitFor(() => w.got.length === 1, 20_000, "line after redeclare");
  expect(texts(w.got)).toEqual(["after the queue came back"]);
  w.stop();
});
