/**
 * SessionViewer.ListSessions over Connect and gRPC-Web against a real
 * database: ordering, limits, the id filter, timestamps, the instance id,
 * tokens, and a database outage answered as UNAVAILABLE (with the instance id).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Code, ConnectError, createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { SessionViewer } from "../src/gen/manman/processor/v1/sessions_pb.ts";
import { createHttpApp } from "../src/http/app.ts";
import { createPool, type Sql } from "../src/db/pool.ts";
import { migrate } from "../src/db/migrate.ts";
import { silentLogger } from "../src/log.ts";
import { createAccessCheck } from "../src/rpc/access.ts";
import { currentRuntime } from "../src/runtime/index.ts";
import { mountSessionViewer } from "../src/log-pipeline/session-viewer.ts";
import { SERVER_INSTANCE_HEADER } from "../src/logs/server-instance.ts";
import { createDatabase, type TestDatabase } from "./support/services.ts";

let db: TestDatabase;
let sql: Sql;
const stop = new AbortController();
let baseUrl: string;

beforeAll(async () => {
  db = await createDatabase("viewerrpc");
  // 1 s statement timeout: the outage test waits for it once.
  sql = createPool({ url: db.url, max: 2, statementTimeoutMs: 1000 });
  await migrate(sql);
  const app = createHttpApp([]);
  mountSessionViewer(app, { sql, logger: silentLogger, signal: stop.signal, access: createAccessCheck(["t1", "t2"]) });
  const served = await currentRuntime().serve({ port: 0, hostname: "127.0.0.1", fetch: (req, ctx) => app.fetch(req, ctx), signal: stop.signal });
  baseUrl = `http://127.0.0.1:${served.port}`;
});
afterAll(async () => {
  stop.abort();
  await sql?.end({ timeout: 1 });
  await db?.remove();
});

const client = (protocol: "connect" | "grpc-web", token?: string): Client<typeof SessionViewer> => {
  const bearer: Interceptor = (next) => (req) => (req.header.set("authorization", `Bearer ${token}`), next(req));
  const options = { baseUrl, interceptors: token ? [bearer] : [] };
  return createClient(SessionViewer, protocol === "connect" ? createConnectTransport(options) : createGrpcWebTransport(options));
};

async function insert(sgcId: number, status: string, extra = ""): Promise<bigint> {
  const [row] = await sql.unsafe<{ session_id: bigint }[]>(
    `INSERT INTO sessions (sgc_id, status${extra ? ", started_at, ended_at, exit_code" : ""}) VALUES (${sgcId}, '${status}'${extra ? ", " + extra : ""}) RETURNING session_id`,
  );
  return row!.session_id;
}

describe.each(["connect", "grpc-web"] as const)("over %s", (protocol) => {
  test("active sessions first, newest first, with times in Unix ms and the exit code", async () => {
    await sql`DELETE FROM sessions`;
    const crashed = await insert(1, "crashed", "'2026-01-02 03:04:05.678', '2026-01-02 04:00:00', 137");
    const running = await insert(2, "running", "'2026-01-02 03:00:00', NULL, NULL");
    const stopped = await insert(3, "stopped");
    const pending = await insert(4, "pending");
    const res = await client(protocol, "t2").listSessions({});
    expect(res.sessions.map((s) => s.sessionId)).toEqual([pending, running, stopped, crashed]);
    const c = res.sessions.find((s) => s.sessionId === crashed)!;
    expect(c.startedAt).toBe(BigInt(Date.UTC(2026, 0, 2, 3, 4, 5, 678)));
    expect(c.endedAt).toBe(BigInt(Date.UTC(2026, 0, 2, 4)));
    expect(c.exitCode).toBe(137);
    expect(c.sgcId).toBe(1n);
    const p = res.sessions.find((s) => s.sessionId === pending)!;
    expect(p.startedAt).toBeUndefined();
    expect(p.exitCode).toBeUndefined();
    expect(p.createdAt).toBeGreaterThan(0n);
    expect(res.serverInstanceId).toMatch(/^[0-9a-f-]{36}$/);
  });

  test("limit and session_ids narrow the answer", async () => {
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push(await insert(10 + i, "stopped"));
    const c = client(protocol, "t1");
    expect((await c.listSessions({ limit: 2 })).sessions).toHaveLength(2);
    const picked = await c.listSessions({ sessionIds: [ids[1]!, ids[3]!, 999_999n] });
    expect(picked.sessions.map((s) => s.sessionId)).toEqual([ids[3]!, ids[1]!]);
    await expect(c.listSessions({ limit: -1 })).rejects.toMatchObject({ code: Code.InvalidArgument });
    await expect(c.listSessions({ sessionIds: [0n] })).rejects.toMatchObject({ code: Code.InvalidArgument });
  });

  test("without the token, or with a wrong one, the call is UNAUTHENTICATED", async () => {
    await expect(client(protocol).listSessions({})).rejects.toMatchObject({ code: Code.Unauthenticated });
    await expect(client(protocol, "nope").listSessions({})).rejects.toMatchObject({ code: Code.Unauthenticated });
  });
});

// The wire name is the contract (CONTRACT §5): our own services live in
// manman.processor.v1, and manman.v1 holds only upstream's LogProcessor.
test("the service answers at /manman.processor.v1.SessionViewer, not under manman.v1", async () => {
  const post = (path: string) =>
    fetch(`${baseUrl}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer t1" },
      body: JSON.stringify({ limit: 1 }),
    });
  const ours = await post("/manman.processor.v1.SessionViewer/ListSessions");
  expect(ours.status).toBe(200);
  expect(await ours.json()).toHaveProperty("serverInstanceId");
  const old = await post("/manman.v1.SessionViewer/ListSessions");
  expect(old.status).toBe(404);
  await old.body?.cancel();
});

test("a database that does not answer is UNAVAILABLE, and the answer still names the process", async () => {
  const first = await client("connect", "t1").listSessions({ limit: 1 });
  // Holding a lock on the table makes the statement wait past its timeout.
  const blocker = createPool({ url: db.url, max: 1, statementTimeoutMs: 60_000 });
  const release = Promise.withResolvers<void>();
  const locked = Promise.withResolvers<void>();
  const held = blocker.begin(async (tx) => {
    await tx`LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE`;
    locked.resolve();
    await release.promise;
  });
  await locked.promise;
  try {
    const err = await client("connect", "t1")
      .listSessions({})
      .then(() => undefined, (e) => ConnectError.from(e));
    expect(err?.code).toBe(Code.Unavailable);
    expect(err?.metadata.get(SERVER_INSTANCE_HEADER)).toBe(first.serverInstanceId);
  } finally {
    release.resolve();
    await held;
    await blocker.end({ timeout: 1 });
  }
});
