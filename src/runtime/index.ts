/**
 * Picks the runtime adapter. Everything Bun- or Deno-specific lives in the
 * twin files beside this one; the rest of the code uses web standards and
 * `node:` built-ins both runtimes have.
 */
import type { Runtime } from "./types.ts";
import { bunRuntime } from "./bun.ts";
import { denoRuntime } from "./deno.ts";

export type { Runtime, RequestContext, FetchHandler, Served } from "./types.ts";

export function currentRuntime(): Runtime {
  if ("Bun" in globalThis) return bunRuntime;
  if ("Deno" in globalThis) return denoRuntime;
  throw new Error("manman-processor runs on Bun or Deno");
}
