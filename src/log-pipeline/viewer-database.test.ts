import { expect, test } from "bun:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { createLimiter } from "../util/limiter.ts";
import { limitedQueries } from "./viewer-database.ts";

test("viewer queries past the limit are refused as statuses: a full queue RESOURCE_EXHAUSTED, a long wait UNAVAILABLE", async () => {
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  const queries = limitedQueries(createLimiter({ concurrency: 1, maxWaiting: 1, maxWaitMs: 20 }));
  const first = queries(() => held);
  const waiting = queries(async () => 1);
  const full = await queries(async () => 2).catch((e: unknown) => e);
  expect(full).toBeInstanceOf(ConnectError);
  expect((full as ConnectError).code).toBe(Code.ResourceExhausted);
  const late = await waiting.catch((e: unknown) => e);
  expect((late as ConnectError).code).toBe(Code.Unavailable);
  release();
  await first;
  expect(await queries(async () => "ok")).toBe("ok");
});
