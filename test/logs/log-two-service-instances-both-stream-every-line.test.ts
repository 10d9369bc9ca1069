/**
 * The whole service, twice, on one vhost and database: each instance streams
 * every log line of a session over its HTTP port (Connect) and its gRPC port.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { LogProcessor } from "../../src/gen/manman/v1/log_processor_pb.ts";
import { BrokerPeer, startProcessor, testWorld, type RunningProcessor } from "../support/processor.ts";
import { waitFor } from "../support/services.ts";
import { range, seqs, texts, watch } from "./support.ts";

// Real broker and database on a possibly busy 2-core machine.
setDefaultTimeout(60_000);

let world: Awaited<ReturnType<typeof testWorld>>;
let one: RunningProcessor;
let two: RunningProcessor;
let peer: BrokerPeer;

beforeAll(async () => {
  world = await testWorld("mmlogsvc");
  one = await startProcessor(world.vhost, world.db);
  two = await startProcessor(world.vhost, world.db);
  peer = await BrokerPeer.connect(world.vhost.url);
});

afterAll(async () => {
  await peer?.close();
  await one?.stop();
  await two?.stop();
  await world?.remove();
});

test("two service instances on the same vhost both stream every line", async () => {
  const s = 7;
  const viaHttp = watch(createClient(LogProcessor, createConnectTransport({ baseUrl: one.url("") })), s);
  const viaGrpc = watch(createClient(LogProcessor, createGrpcTransport({ baseUrl: `http://127.0.0.1:${two.service.grpcPort}` })), s);
  // Lines published before a stream opens come as backlog, so no need to wait for subscriptions.
  for (const i of range(1, 100)) await peer.publish(`logs.session.${s}`, { session_id: s, timestamp: Date.now(), source: "stderr", message: `line ${i}` });
  await waitFor(() => viaHttp.got.length === 100 && viaGrpc.got.length === 100, 30_000, "both instances streamed 100 lines");
  for (const w of [viaHttp, viaGrpc]) {
    expect(seqs(w.got)).toEqual(range(1, 100));
    expect(texts(w.got)[99]).toBe("line 100");
    expect(w.got[0].source).toBe("stderr");
    w.stop();
  }
});
