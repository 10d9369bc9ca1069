/**
 * The Hono app on HEALTH_CHECK_PORT: liveness, readiness, and whatever the
 * other components mount (Connect/gRPC-Web routes, the log viewer).
 */
import { Hono } from "hono";
import type { RequestContext } from "../runtime/index.ts";
import { errorMessage } from "../util/errors.ts";
import { withTimeout } from "../util/timeout.ts";

export type AppEnv = { Bindings: RequestContext };
export type App = Hono<AppEnv>;

/** A part of the process that must be up for it to be ready. */
export interface ReadinessCheck {
  /** Named as an operator would: "database", "broker", "event_consumer". */
  name: string;
  /** True when up. May throw or reject, which counts as down with that reason. */
  check(): boolean | Promise<boolean>;
}

// 2 s: a readiness probe must answer before the kubelet's default 1 s…10 s
// probe timeout; a database slower than this is as good as down.
const CHECK_TIMEOUT_MS = 2000;

/** An app with no routes yet: METRICS_PORT's, for /metrics and /status apart from the public routes. */
export function createBareApp(): App {
  return new Hono<AppEnv>();
}

export function createHttpApp(checks: ReadinessCheck[]): App {
  const app = new Hono<AppEnv>();
  app.get("/healthz", (c) => c.json({ status: "ok" }));
  app.get("/readyz", async (c) => {
    const results = await Promise.all(checks.map(runCheck));
    const parts = Object.fromEntries(results.map((r) => [r.name, r.up ? "up" : r.reason ? `down: ${r.reason}` : "down"]));
    const ready = results.every((r) => r.up);
    return c.json({ status: ready ? "ready" : "not ready", ...parts }, ready ? 200 : 503);
  });
  return app;
}

async function runCheck(check: ReadinessCheck): Promise<{ name: string; up: boolean; reason?: string }> {
  try {
    return { name: check.name, up: await withTimeout(Promise.resolve(check.check()), CHECK_TIMEOUT_MS, `no answer in ${CHECK_TIMEOUT_MS} ms`) };
  } catch (err) {
    return { name: check.name, up: false, reason: errorMessage(err) };
  }
}
