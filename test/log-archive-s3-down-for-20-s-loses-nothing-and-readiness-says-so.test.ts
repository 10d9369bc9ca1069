/**
 * S3 unreachable for 20 s while lines keep coming (a TCP proxy in front of
 * s3rver cuts every connection and refuses new ones, then comes back on the
 * same port): the lines are held unacked, writes are retried, /readyz says
 * `log_archive` is down while they fail and up once they go through, and in
 * the end every line is archived exactly once, with no row left pending and
 * no object without a row.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import postgres from "postgres";
import { apiLinesOf, completeLines, declareArchiveQueueFirst, keys, makeLines, publishLines, type ObjectSource } from "./support/archive.ts";
import { readyz } from "./support/faults.ts";
import { createManManV2Database, insertDeployment, insertSession } from "./support/manmanv2-schema.ts";
import { BrokerPeer, startProcessor, waitFor, type RunningProcessor } from "./support/processor.ts";
import { s3Request, useS3Server } from "./support/s3.ts";
import { createVhost, type TestDatabase, type TestVhost } from "./support/services.ts";
import { TcpProxy } from "./support/tcp-proxy.ts";

const s3 = useS3Server("archive-outage");
let vhost: TestVhost;
let db: TestDatabase;
let sql: postgres.Sql;
let peer: BrokerPeer;
let proxy: TcpProxy;
let processor: RunningProcessor;

beforeAll(async () => {
  [vhost, db] = await Promise.all([createVhost("archs3"), createManManV2Database("archs3")]);
  sql = postgres(db.url, { max: 4, onnotice: () => {} });
  peer = await BrokerPeer.connect(vhost.url);
  await declareArchiveQueueFirst(vhost.url);
  const endpoint = new URL(s3.server.endpoint);
  proxy = await TcpProxy.start(endpoint.hostname, Number(endpoint.port));
  const o = s3.storeOptions();
  processor = await startProcessor(vhost, db, {
    LOG_LEVEL: "info",
    S3_BUCKET: o.bucket, S3_ENDPOINT: `http://127.0.0.1:${proxy.port}`, S3_REGION: o.region!, S3_ACCESS_KEY: o.accessKeyId, S3_SECRET_KEY: o.secretAccessKey,
  });
});
afterAll(async () => {
  await processor?.stop();
  await proxy?.close();
  await peer?.close();
  await sql?.end({ timeout: 1 });
  await Promise.all([vhost?.remove(), db?.remove()]);
});

async function bucketKeys(): Promise<string[]> {
  const text = await (await s3Request(s3.server, "GET", `/${s3.bucket}?list-type=2&max-keys=1000`)).text();
  return [...text.matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => m[1]!).sort();
}

test("S3 down for 20 s: lines are held, /readyz says log_archive is down, then every line is archived once", async () => {
  const source: ObjectSource = { s3: { server: s3.server, bucket: s3.bucket } };
  const { sgcId } = await insertDeployment(sql);
  const ids = [await insertSession(sql, { sgcId, status: "running" }), await insertSession(sql, { sgcId, status: "running" })];
  const base = Math.floor((Date.now() - 3 * 3_600_000) / 60_000) * 60_000;
  // Three batches, each in minutes of its own three hours ago (due at once).
  const before = makeLines(ids, 1000, base, 50, "before");
  const during1 = makeLines(ids, 1000, base + 5 * 60_000, 50, "during");
  const during2 = makeLines(ids, 1000, base + 10 * 60_000, 50, "later");
  const all = [...before, ...during1, ...during2];

  await publishLines(peer, before);
  await waitFor(async () => (await completeLines(sql, ids)) === before.length, 30_000, "first batch archived");
  expect((await readyz(processor.url("/readyz"))).body.log_archive).toBe("up");

  await proxy.cut();
  const cutAt = performance.now();
  await publishLines(peer, during1);
  const down = await waitFor(async () => {
    const r = await readyz(processor.url("/readyz"));
    return r.status === 503 && r.body.log_archive?.startsWith("down") ? r : null;
  }, 15_000, "readiness reports the archive down");
  console.log(`during the outage: /readyz ${down.status} log_archive="${down.body.log_archive}"`);
  expect(down.body.database).toBe("up");
  await publishLines(peer, during2);
  await Bun.sleep(Math.max(0, 20_000 - (performance.now() - cutAt)));
  // Nothing was written meanwhile, nothing acked: all held.
  expect(await completeLines(sql, ids)).toBe(before.length);
  expect(processor.service.metrics.get("manman_log_archive_pending_lines")).toBe(during1.length + during2.length);
  expect(processor.service.metrics.total("manman_log_archive_write_failures_total")).toBeGreaterThan(0);

  await proxy.restore();
  const back = performance.now();
  await waitFor(async () => (await completeLines(sql, ids)) === all.length, 30_000, "every line archived after the outage");
  console.log(`archived ${all.length - before.length} held lines ${Math.round(performance.now() - back)} ms after S3 came back`);
  await waitFor(async () => (await readyz(processor.url("/readyz"))).body.log_archive === "up", 10_000, "readiness up again");

  expect(keys(await apiLinesOf(sql, ids, source))).toEqual(keys(all));
  expect((await sql`SELECT count(*)::int AS n FROM log_references WHERE state <> 'complete'`)[0]!.n).toBe(0);
  const paths = (await sql`SELECT file_path FROM log_references`).map((r) => (r.file_path as string).slice(`s3://${s3.bucket}/`.length)).sort();
  expect(await bucketKeys()).toEqual(paths);
  expect(processor.service.metrics.get("manman_log_archive_duplicate_lines_total")).toBe(0);
}, 120_000);
