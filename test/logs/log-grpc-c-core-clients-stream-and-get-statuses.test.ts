/**
 * A gRPC C-core client (Python grpcio, as Go and grpcurl are other strict
 * peers) streams a session's backlog and gets UNAUTHENTICATED,
 * DEADLINE_EXCEEDED and INVALID_ARGUMENT as statuses, not "Stream removed".
 * C-core is stricter about HTTP/2 framing than connect-node, and the gRPC
 * stream path is hand-written (src/rpc/grpc-log-stream.ts).
 *
 * Needs a Python with grpcio and grpcio-tools: `python3` on PATH, else
 * Debian's /usr/bin/python3 (python3-grpcio and python3-grpc-tools, which
 * .ci/run installs). Skipped without one, except in CI: there it fails,
 * since a skip would hide that this peer was never tried.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createVhost, waitFor, type TestVhost } from "../support/services.ts";
import { hostManager, startLogStack, type HostManager, type LogStack } from "./support.ts";

setDefaultTimeout(60_000);
const PYTHONS = ["python3", "/usr/bin/python3"];
// A pyenv or venv python3 first on PATH may lack the modules that Debian's has.
const python = PYTHONS.find((p) => spawnSync(p, ["-c", "import grpc, grpc_tools"]).status === 0);
const inCI = !["", "0", "false"].includes((process.env.CI ?? "").toLowerCase());
const NO_PYTHON =
  `no Python with grpcio and grpcio-tools (tried ${PYTHONS.join(", ")}): ` +
  "apt-get install python3-grpcio python3-grpc-tools (as .ci/run does), or pip install grpcio grpcio-tools";

let vhost: TestVhost;
let stack: LogStack;
let hm: HostManager;
let stubs: string;

beforeAll(async () => {
  if (!python) return;
  stubs = mkdtempSync(join(tmpdir(), "mm-grpcio-"));
  execFileSync(python, ["-m", "grpc_tools.protoc", "-Iproto", `--python_out=${stubs}`, `--grpc_python_out=${stubs}`, "manman/v1/log_processor.proto"]);
  vhost = await createVhost("mmlogcore");
  stack = await startLogStack(vhost.url, { LOG_ACCESS_TOKEN: "core-token" });
  hm = await hostManager(vhost.url);
  for (let i = 1; i <= 5; i++) await hm.line(7, `line ${i}`);
  await waitFor(() => stack.ingest.ingested() >= 5, 20_000, "ingested");
});

afterAll(async () => {
  await hm?.close();
  await stack?.stop();
  await vhost?.remove();
  if (stubs) rmSync(stubs, { recursive: true, force: true });
});

test.skipIf(!python && !inCI)("grpcio streams the backlog and gets proper statuses", async () => {
  if (!python) throw new Error(`CI is set and ${NO_PYTHON}`);
  const py = Bun.spawn([python, "test/logs/grpcio/client.py", String(stack.grpcPort), stubs, "core-token"], { stdout: "pipe", stderr: "inherit" });
  const out = JSON.parse(await new Response(py.stdout).text());
  expect(await py.exited).toBe(0);
  expect(out).toEqual({
    no_token: "UNAUTHENTICATED",
    resumed: [[3, "line 3"], [4, "line 4"], [5, "line 5"]],
    deadline: "DEADLINE_EXCEEDED",
    bad_request: "INVALID_ARGUMENT",
  });
  await waitFor(() => stack.hub.subscriberCount() === 0, 20_000, "cancelled streams freed");
});
