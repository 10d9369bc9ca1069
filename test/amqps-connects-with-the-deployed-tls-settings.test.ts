/**
 * amqps:// against the real local RabbitMQ: the test gives the running
 * broker a TLS listener of its own (rabbit_networking:start_ssl_listener via
 * `rabbitmqctl eval`) on a free port, with a CA and a server certificate it
 * makes with openssl, and removes the listener afterwards. The certificate
 * is issued for a name that is not the host the processor dials
 * (127.0.0.1), as in the deployment the settings were made for: a pod dials
 * a cluster-internal name, the certificate carries the public one.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { execFile } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { createLogger } from "../src/log.ts";
import { startService } from "../src/service.ts";
import { BrokerPeer, insertServer, startProcessor, testConfig, testWorld, waitFor, type RunningProcessor } from "./support/processor.ts";
import { spawnService } from "./support/subprocess.ts";

const run = promisify(execFile);
const CERT_NAME = "rmq.manman.test";

let dir: string;
let tlsPort: number;
let world: Awaited<ReturnType<typeof testWorld>>;
let peer: BrokerPeer;
const caPath = () => join(dir, "ca.pem");
const tlsUrl = () => {
  const u = new URL(world.vhost.url);
  u.protocol = "amqps:";
  u.hostname = "127.0.0.1";
  u.port = String(tlsPort);
  return u.toString();
};
const listener = () => `{"127.0.0.1", ${tlsPort}}`;

async function openssl(...args: string[]): Promise<void> {
  await run("openssl", args, { cwd: dir });
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function brokerEval(expression: string): Promise<string> {
  return (await run("rabbitmqctl", ["-q", "eval", expression])).stdout.trim();
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "mm-amqps-"));
  // The broker runs as its own user: it must be able to read the files.
  chmodSync(dir, 0o755);
  // One day is plenty for a test run; 2048-bit RSA is accepted by every TLS stack here.
  await openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=manman test CA");
  await openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", `/CN=${CERT_NAME}`);
  writeFileSync(join(dir, "san.cnf"), `subjectAltName=DNS:${CERT_NAME}\n`);
  await openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem", "-days", "1", "-extfile", "san.cnf");
  for (const f of ["ca.pem", "server.pem", "server.key"]) chmodSync(join(dir, f), 0o644);
  tlsPort = await freePort();
  // One acceptor: a handful of connections at a time.
  const started = await brokerEval(`rabbit_networking:start_ssl_listener(${listener()}, [{certfile, "${join(dir, "server.pem")}"}, {keyfile, "${join(dir, "server.key")}"}], 1).`);
  expect(started).toBe("ok");
  world = await testWorld("amqps");
  peer = await BrokerPeer.connect(world.vhost.url);
}, 60_000);

afterAll(async () => {
  await peer?.close();
  if (tlsPort) await brokerEval(`rabbit_networking:stop_tcp_listener(${listener()}).`).catch(() => {});
  await world?.remove();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface BrokerConnection {
  vhost: string;
  ssl: boolean;
  port: number;
}
async function connectionsOfTheTestVhost(): Promise<BrokerConnection[]> {
  const { stdout } = await run("rabbitmqctl", ["-q", "list_connections", "--formatter", "json", "vhost", "ssl", "port"]);
  return (JSON.parse(stdout) as BrokerConnection[]).filter((c) => c.vhost === world.vhost.vhost);
}

/** A host status message goes through the consumer, the database and the publisher. */
async function processesAMessage(name: string): Promise<void> {
  const id = await insertServer(world.sql, name);
  await peer.publish(`status.host.${id}`, { server_id: id, status: "online" });
  await waitFor(async () => (await world.sql`SELECT status FROM servers WHERE server_id = ${id}`)[0]!.status === "online", 15_000, "applied");
  await waitFor(() => peer.events("manman.host.online").find((e) => (e.body as { server_id: number }).server_id === id), 15_000, "announced");
}

/** Starts with `env`, expects the first connect to fail; returns the line that says so. */
async function refused(env: Record<string, string>): Promise<Record<string, unknown>> {
  const logs: Record<string, unknown>[] = [];
  const logger = createLogger({ level: "info", write: (line) => void logs.push(JSON.parse(line)) });
  const controller = new AbortController();
  const starting = startService({ config: testConfig(world.vhost, world.db, { ...env, LOG_LEVEL: "info" }), logger, signal: controller.signal });
  try {
    const line = await waitFor(() => logs.find((l) => l.msg === "broker unreachable at start; retrying"), 15_000, "refusal logged");
    expect((await connectionsOfTheTestVhost()).filter((c) => c.ssl)).toEqual([]);
    return line;
  } finally {
    controller.abort();
    expect(await starting.then(() => "started", () => "stopped")).toBe("stopped");
  }
}

describe("amqps:// with the deployed TLS settings", () => {
  test("with the CA and the certificate's server name, the processor connects over TLS to 127.0.0.1 and processes a message", async () => {
    let p: RunningProcessor | undefined;
    try {
      p = await startProcessor(world.vhost, world.db, { RABBITMQ_URL: tlsUrl(), RABBITMQ_CA_CERT_PATH: caPath(), RABBITMQ_TLS_SERVER_NAME: CERT_NAME });
      await processesAMessage("over-tls");
      // The processor's two connections (the event consumer's own, and the
      // one for log ingest and publishes) are on the TLS port; the only
      // plain one is the peer's.
      const conns = await connectionsOfTheTestVhost();
      expect(conns.filter((c) => c.ssl).map((c) => c.port)).toEqual([tlsPort, tlsPort]);
      expect(conns.filter((c) => !c.ssl)).toHaveLength(1);
    } finally {
      await p?.stop();
    }
  }, 60_000);

  test("verification is on by default: without the CA the certificate is refused, and the log line says which settings fix it", async () => {
    const line = await refused({ RABBITMQ_URL: tlsUrl(), RABBITMQ_TLS_SERVER_NAME: CERT_NAME });
    expect(String(line.error)).toMatch(/certificate/i);
    expect(String(line.hint)).toContain("RABBITMQ_CA_CERT_PATH");
  }, 60_000);

  test("the certificate is checked against RABBITMQ_TLS_SERVER_NAME: without it (the URL's 127.0.0.1) or with another name it is refused", async () => {
    const byAddress = await refused({ RABBITMQ_URL: tlsUrl(), RABBITMQ_CA_CERT_PATH: caPath() });
    expect(String(byAddress.error)).toMatch(/127\.0\.0\.1/);
    const otherName = await refused({ RABBITMQ_URL: tlsUrl(), RABBITMQ_CA_CERT_PATH: caPath(), RABBITMQ_TLS_SERVER_NAME: "other.manman.test" });
    expect(String(otherName.error)).toContain("other.manman.test");
    expect(String(otherName.hint)).toContain("RABBITMQ_TLS_SERVER_NAME");
  }, 60_000);

  test("RABBITMQ_SSL_VERIFY=false connects without the CA or the name, and warns", async () => {
    let p: RunningProcessor | undefined;
    try {
      p = await startProcessor(world.vhost, world.db, { RABBITMQ_URL: tlsUrl(), RABBITMQ_SSL_VERIFY: "false" });
      expect(p.logs.some((l) => l.level === "warn" && String(l.msg).startsWith("RABBITMQ_SSL_VERIFY=false"))).toBe(true);
      await processesAMessage("unverified-tls");
      expect((await connectionsOfTheTestVhost()).filter((c) => c.ssl).map((c) => c.port)).toEqual([tlsPort, tlsPort]);
    } finally {
      await p?.stop();
    }
  }, 60_000);

  test("a CA file that cannot be read stops the start at once: exit status 1 and a line naming RABBITMQ_CA_CERT_PATH", async () => {
    const missing = join(dir, "no-such-ca.pem");
    const proc = spawnService({ RABBITMQ_URL: tlsUrl(), RABBITMQ_CA_CERT_PATH: missing, DATABASE_URL: world.db.url, HEALTH_CHECK_PORT: "0", GRPC_PORT: "0" });
    expect(await proc.exited).toBe(1);
    const stderr = proc.lines.map((l) => String(l.stderr ?? "")).join("");
    expect(stderr).toContain(`RABBITMQ_CA_CERT_PATH=${missing}: cannot read the CA certificate`);
  }, 60_000);
});
