/**
 * Sequence numbers are per process (docs/replicas.md): a client whose
 * stream moves to another replica (a load balancer, a rolling deploy) gets
 * that replica's instance id in the `manman-server-instance` response header
 * of every StreamSessionLogs, before any line, and a client that names the
 * instance its number came from gets the new replica's whole buffer instead
 * of lines after a number that means something else there: no silent gap.
 *
 * B starts first and sees 20 lines A never sees, so the two number the same
 * line differently (B's n is A's n - 20): the case where resuming by number
 * alone would skip lines without a trace.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import type { Client } from "@connectrpc/connect";
import type { LogProcessor, LogMessage } from "../../src/gen/manman/v1/log_processor_pb.ts";
import { SERVER_INSTANCE_HEADER } from "../../src/logs/server-instance.ts";
import { createVhost, waitFor, type TestVhost } from "../support/services.ts";
import { hostManager, PROTOCOLS, range, startLogStack, texts, type HostManager, type LogStack } from "./support.ts";

setDefaultTimeout(60_000);

let vhost: TestVhost;
let a: LogStack;
let b: LogStack;
let hm: HostManager;
const SESSION = 77;

beforeAll(async () => {
  vhost = await createVhost("mmlogmove");
  hm = await hostManager(vhost.url);
  b = await startLogStack(vhost.url);
  for (const i of range(1, 20)) await hm.line(SESSION, `line ${i}`);
  await waitFor(() => b.ingest.ingested() >= 20, 20_000, "B has the first 20 lines");
  a = await startLogStack(vhost.url);
  for (const i of range(21, 60)) await hm.line(SESSION, `line ${i}`);
  await waitFor(() => a.ingest.ingested() >= 40 && b.ingest.ingested() >= 60, 20_000, "both have the rest");
});

afterAll(async () => {
  await hm?.close();
  await a?.stop();
  await b?.stop();
  await vhost?.remove();
});

/** Reads a stream until `until` lines came or it goes quiet; returns them and the instance header. */
async function read(client: Client<typeof LogProcessor>, after: number, numberedBy?: string, until = 1000): Promise<{ lines: LogMessage[]; instance: string | null }> {
  const ac = new AbortController();
  const lines: LogMessage[] = [];
  let instance: string | null = null;
  const quiet = () => setTimeout(() => ac.abort(), 500);
  let timer = quiet();
  try {
    const headers = numberedBy ? { [SERVER_INSTANCE_HEADER]: numberedBy } : undefined;
    const stream = client.streamSessionLogs({ sessionId: BigInt(SESSION), afterSequenceNumber: BigInt(after) }, { signal: ac.signal, headers, onHeader: (h) => (instance = h.get(SERVER_INSTANCE_HEADER)) });
    for await (const m of stream) {
      lines.push(m);
      clearTimeout(timer);
      if (lines.length >= until) break;
      timer = quiet();
    }
  } catch (err) {
    if (!ac.signal.aborted) throw err;
  } finally {
    clearTimeout(timer);
    ac.abort();
  }
  return { lines, instance };
}

for (const protocol of PROTOCOLS) {
  test(`${protocol}: every stream names its process; a number carried to another replica is either flagged by the header or answered with the whole buffer`, async () => {
    // On B the client read up to line 25 (B's number 25).
    const first = await read(b.client(protocol), 0, undefined, 25);
    expect(texts(first.lines)).toEqual(range(1, 25).map((i) => `line ${i}`));
    const fromB = first.instance!;
    expect(fromB).toBeTruthy();
    const last = Number(first.lines.at(-1)!.sequenceNumber);

    // Moved to A by number alone: A's 25 is line 45, so lines 26-45 would be
    // skipped; the header is what tells the client its numbering changed.
    const blind = await read(a.client(protocol), last);
    expect(blind.instance).toBeTruthy();
    expect(blind.instance).not.toBe(fromB);
    expect(texts(blind.lines)[0]).toBe("line 46");

    // Moved to A naming B's numbering: A's whole buffer, so every line after
    // line 25 is there (the client drops the ones it has, or reads the seam
    // from LogHistory), and the header says the numbers are now A's.
    const told = await read(a.client(protocol), last, fromB);
    expect(told.instance).toBe(blind.instance);
    expect(texts(told.lines)).toEqual(range(21, 60).map((i) => `line ${i}`));

    // Back on B naming B's own numbering: exactly the lines after 25.
    const same = await read(b.client(protocol), last, fromB);
    expect(same.instance).toBe(fromB);
    expect(texts(same.lines)).toEqual(range(26, 60).map((i) => `line ${i}`));
  });
}

test("the instance header is the same on every stream of one process and differs between processes", async () => {
  const ids = new Set<string>();
  for (const protocol of PROTOCOLS) {
    ids.add(`a:${(await read(a.client(protocol), 59)).instance}`);
    ids.add(`b:${(await read(b.client(protocol), 59)).instance}`);
  }
  expect(ids.size).toBe(2);
});
