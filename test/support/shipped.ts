/**
 * The smoke test both shipped artefacts must pass, the compiled binary and
 * the Deno bundle alike: built once (scripts/build.ts into a temp folder),
 * copied alone into another temp folder (no node_modules, no sources), run
 * with an empty environment apart from the service URLs and ports.
 *
 * The build runs with canary values in its environment, in its NODE_ENV and
 * in a `.env` in its working folder; none may end up in the artefact. The run
 * folder holds a `.env` and a `bunfig.toml` that would break the start if
 * they were loaded. It runs with GRPC_AUTH_MODE=oidc against an issuer
 * this test serves, so jose's web-crypto checks are proven in the artefact.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawn, spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { createGrpcTransport } from "@connectrpc/connect-node";
import pkg from "../../package.json" with { type: "json" };
import { SETTINGS } from "../../src/config.ts";
import { LogProcessor } from "../../src/gen/manman/v1/log_processor_pb.ts";
import { mint, newKey, startIssuer, type IssuerKey, type TestIssuer } from "./oidc-issuer.ts";
import { BrokerPeer, insertSession, testWorld, waitFor } from "./processor.ts";

const ROOT = join(import.meta.dir, "..", "..");

export interface Artefact {
  /** `binary` or `deno`: what scripts/build.ts --only builds. */
  only: "binary" | "deno";
  /** File name scripts/build.ts writes. */
  file: string;
  /** The command that runs the artefact at `path` with `args`. */
  command(path: string, args: string[]): string[];
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

// 180 s: a cold `bun build --compile` plus the first Deno start on a busy
// 2-core machine take seconds each; a hang still fails within minutes.
const BUILD_TIMEOUT_MS = 180_000;
// Readiness waits on a fresh database's migrations and the broker topology.
const READY_TIMEOUT_MS = 60_000;

export function smokeTestArtefact(label: string, artefact: Artefact): void {
  const canary = `canary${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
  const canaries = { env: `env-${canary}`, nodeEnv: `nodeenv-${canary}`, dotenv: `dotenv-${canary}` };
  let buildDir = "";
  let runDir = "";
  let path = "";
  let world: Awaited<ReturnType<typeof testWorld>>;
  let peer: BrokerPeer;
  let service: ReturnType<typeof start> | undefined;
  let httpPort = 0;
  let grpcPort = 0;
  let issuer: TestIssuer;
  let issuerKey: IssuerKey;

  /** Runs the artefact to completion (help, version, migrate). */
  const runOnce = (args: string[], env: Record<string, string> = {}): Run => {
    const [cmd, ...rest] = artefact.command(path, args);
    const r = spawnSync(cmd!, rest, { cwd: runDir, env, encoding: "utf8", timeout: 60_000 });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };

  function start(env: Record<string, string>) {
    const [cmd, ...rest] = artefact.command(path, []);
    const child = spawn(cmd!, rest, { cwd: runDir, env, stdio: ["ignore", "pipe", "pipe"] });
    const lines: Record<string, unknown>[] = [];
    let out = "";
    let resolveReady!: (ports: { http: number; grpc: number }) => void;
    const ready = new Promise<{ http: number; grpc: number }>((r) => (resolveReady = r));
    child.stdout.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      for (let nl = out.indexOf("\n"); nl >= 0; nl = out.indexOf("\n")) {
        const line = out.slice(0, nl);
        out = out.slice(nl + 1);
        try {
          const entry = JSON.parse(line) as Record<string, unknown>;
          lines.push(entry);
          if (entry.msg === "manman-processor ready") resolveReady({ http: Number(entry.http_port), grpc: Number(entry.grpc_port) });
        } catch {
          lines.push({ raw: line });
        }
        if (process.env.TEST_VERBOSE) process.stdout.write(`[${label}] ${line}\n`);
      }
    });
    child.stderr.on("data", (chunk: Buffer) => lines.push({ stderr: chunk.toString() }));
    const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
    return { child, lines, ready, exited };
  }

  const serviceEnv = () => ({
    RABBITMQ_URL: world.vhost.url,
    DATABASE_URL: world.db.url,
    // 0: the OS picks free ports; the service logs the HTTP one when ready.
    HEALTH_CHECK_PORT: "0",
    GRPC_PORT: "0",
    // Log access by the issuer's tokens (docs/security.md).
    GRPC_AUTH_MODE: "oidc",
    GRPC_OIDC_ISSUER: issuer.url,
    GRPC_OIDC_CLIENT_ID: "manman-log-processor",
  });

  beforeAll(async () => {
    buildDir = mkdtempSync(join(tmpdir(), "mm-build-"));
    runDir = mkdtempSync(join(tmpdir(), "mm-run-"));
    writeFileSync(join(buildDir, ".env"), `MANMAN_DOTENV_CANARY=${canaries.dotenv}\n`);
    const build = spawnSync(process.execPath, [join(ROOT, "scripts/build.ts"), "--outdir", join(buildDir, "out"), "--only", artefact.only], {
      cwd: buildDir,
      env: { ...process.env, MANMAN_ENV_CANARY: canaries.env, NODE_ENV: canaries.nodeEnv },
      encoding: "utf8",
      timeout: BUILD_TIMEOUT_MS,
    });
    if (build.status !== 0) throw new Error(`build failed (${build.status}):\n${build.stdout}\n${build.stderr}`);
    path = join(runDir, artefact.file);
    copyFileSync(join(buildDir, "out", artefact.file), path);
    // Loaded, either would stop the start: LOG_LEVEL=shout is invalid, and
    // bunfig.toml preloads a file that does not exist.
    writeFileSync(join(runDir, ".env"), "LOG_LEVEL=shout\n");
    writeFileSync(join(runDir, "bunfig.toml"), 'preload = ["./missing-preload.ts"]\n');
    issuerKey = await newKey("ship-key", "ES256");
    issuer = await startIssuer([issuerKey]);
    world = await testWorld(`ship_${artefact.only}`);
    peer = await BrokerPeer.connect(world.vhost.url);
  }, BUILD_TIMEOUT_MS);

  afterAll(async () => {
    if (service && service.child.exitCode === null) {
      service.child.kill("SIGKILL");
      await service.exited;
    }
    await peer?.close();
    await world?.remove();
    await issuer?.stop();
    for (const dir of [buildDir, runDir]) if (dir) rmSync(dir, { recursive: true, force: true });
  });

  describe(label, () => {
    test("--version prints the package version", () => {
      for (const flag of ["--version", "-V"]) {
        const r = runOnce([flag]);
        expect(r.code).toBe(0);
        expect(r.stdout.trim()).toBe(`manman-processor ${pkg.version}`);
      }
    });

    test("--help for the program and each command lists every environment variable", () => {
      for (const args of [["--help"], ["serve", "--help"], ["migrate", "--help"], ["healthcheck", "--help"]]) {
        const r = runOnce(args);
        expect(r.code).toBe(0);
        for (const s of Object.values(SETTINGS)) expect(r.stdout).toContain(s.env);
        expect(r.stdout).toContain("(default: 8080)");
      }
    });

    test("a bad flag or command exits 2 with usage on stderr", () => {
      for (const args of [["--bogus"], ["migrate", "--bogus"], ["frobnicate"]]) {
        const r = runOnce(args);
        expect(r.code).toBe(2);
        expect(r.stderr).toContain("Usage:");
        expect(r.stdout).toBe("");
      }
    });

    test("no build-time environment value, NODE_ENV or .env value is inside the artefact", () => {
      const bytes = readFileSync(path);
      for (const value of Object.values(canaries)) expect(bytes.includes(value)).toBe(false);
    });

    test("migrate creates the contract's tables in a fresh database and exits 0", async () => {
      const r = runOnce(["migrate"], { DATABASE_URL: world.db.url });
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      const tables = await world.sql<{ table_name: string }[]>`
        SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'`;
      const names = tables.map((t) => t.table_name);
      for (const t of ["servers", "sessions", "log_references"]) expect(names).toContain(t);
      // A second run finds nothing to do and still succeeds.
      expect(runOnce(["migrate"], { DATABASE_URL: world.db.url }).code).toBe(0);
    }, 120_000);

    test("serves /healthz and /readyz, ignoring the .env and bunfig.toml beside it", async () => {
      service = start(serviceEnv());
      ({ http: httpPort, grpc: grpcPort } = await Promise.race([
        service.ready,
        service.exited.then((code) => {
          throw new Error(`exited with ${code} before ready: ${JSON.stringify(service!.lines.slice(-5))}`);
        }),
        Bun.sleep(READY_TIMEOUT_MS).then(() => {
          throw new Error(`not ready in ${READY_TIMEOUT_MS} ms: ${JSON.stringify(service!.lines.slice(-5))}`);
        }),
      ]));
      expect((await fetch(`http://127.0.0.1:${httpPort}/healthz`)).status).toBe(200);
      await waitFor(async () => (await fetch(`http://127.0.0.1:${httpPort}/readyz`)).status === 200, 30_000, "/readyz 200");
      // The container's HEALTHCHECK: the artefact asks itself.
      expect(runOnce(["healthcheck", "--ready"], { HEALTH_CHECK_PORT: String(httpPort) }).code).toBe(0);
    }, READY_TIMEOUT_MS + 40_000);

    test("processes a session lifecycle: the row ends stopped and running/stopped are announced", async () => {
      expect(httpPort).toBeGreaterThan(0);
      const sgcId = 4242;
      const id = await insertSession(world.sql, sgcId);
      const send = (status: string, extra: Record<string, unknown> = {}) =>
        peer.publish(`status.session.${id}`, { session_id: id, sgc_id: sgcId, status, ...extra });
      for (const status of ["starting", "running", "stopping"]) await send(status);
      await send("stopped", { exit_code: 0 });
      await waitFor(async () => (await world.sql`SELECT status FROM sessions WHERE session_id = ${id}`)[0]?.status === "stopped", 20_000, "session stopped");
      const announced = () => peer.events("manman.session.").filter((e) => (e.body as { session_id: number }).session_id === id);
      await waitFor(() => announced().length === 2, 20_000, "two announcements");
      expect(announced().map((e) => e.routingKey)).toEqual(["manman.session.running", "manman.session.stopped"]);
    }, 60_000);

    test("serves the viewer's page and the browser assets embedded in it", async () => {
      expect(httpPort).toBeGreaterThan(0);
      const page = await fetch(`http://127.0.0.1:${httpPort}/`);
      expect(page.status).toBe(200);
      expect(page.headers.get("content-type")).toContain("text/html");
      const html = await page.text();
      const assets = [...html.matchAll(/(?:href|src)="(\/assets\/[^"]+)"/g)].map((m) => m[1]!);
      expect(assets.some((a) => a.endsWith(".js"))).toBe(true);
      expect(assets.some((a) => a.endsWith(".css"))).toBe(true);
      for (const a of assets) {
        const res = await fetch(`http://127.0.0.1:${httpPort}${a}`);
        expect(res.status).toBe(200);
        expect((await res.text()).length).toBeGreaterThan(100);
      }
    }, 30_000);

    test("streams a session's logs over Connect (HTTP port) and native gRPC (GRPC_PORT) with an OIDC token, and refuses a call without one", async () => {
      expect(httpPort).toBeGreaterThan(0);
      expect(grpcPort).toBeGreaterThan(0);
      const token = await mint(issuerKey, issuer.url, { aud: "manman-log-processor" });
      const interceptors: Interceptor[] = [(next) => (req) => (req.header.set("authorization", `Bearer ${token}`), next(req))];
      const refused = await createClient(LogProcessor, createConnectTransport({ baseUrl: `http://127.0.0.1:${httpPort}` }))
        .streamSessionLogs({ sessionId: 1n })
        [Symbol.asyncIterator]()
        .next()
        .catch((e: unknown) => ConnectError.from(e));
      expect((refused as ConnectError).code).toBe(Code.Unauthenticated);
      const transports = [
        ["connect", createConnectTransport({ baseUrl: `http://127.0.0.1:${httpPort}`, interceptors })],
        ["grpc", createGrpcTransport({ baseUrl: `http://127.0.0.1:${grpcPort}`, interceptors })],
      ] as const;
      let sessionId = 700;
      for (const [name, transport] of transports) {
        const id = ++sessionId;
        const line = (n: number) => ({ session_id: id, timestamp: Date.now(), source: "stdout", message: `${name} line ${n}` });
        const client = createClient(LogProcessor, transport);
        // The first line may reach the service before or after the stream
        // opens (backlog or live): either way it is sequence number 1.
        await peer.publish(`logs.session.${id}`, line(1));
        const ac = new AbortController();
        const timer = setTimeout(() => ac.abort(), 30_000);
        const got: string[] = [];
        try {
          for await (const m of client.streamSessionLogs({ sessionId: BigInt(id), afterSequenceNumber: 0n }, { signal: ac.signal })) {
            got.push(`${m.sequenceNumber} ${m.message}`);
            if (got.length === 1) await peer.publish(`logs.session.${id}`, line(2));
            if (got.length === 2) break;
          }
        } finally {
          clearTimeout(timer);
          ac.abort();
        }
        expect(got).toEqual([`1 ${name} line 1`, `2 ${name} line 2`]);
      }
    }, 60_000);

    test("SIGTERM drains and exits 0", async () => {
      expect(service).toBeDefined();
      service!.child.kill("SIGTERM");
      const code = await Promise.race([service!.exited, Bun.sleep(45_000).then(() => "still running")]);
      expect(code).toBe(0);
      expect(service!.lines.some((l) => l.msg === "stopped")).toBe(true);
    }, 60_000);
  });
}

