import { expect, test } from "bun:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { connectTimeoutMs, grpcTimeoutMs } from "./framing.ts";
import { clampDeadline, clampDeadlineHeaders, MAX_DEADLINE_MS, readBodyWithin } from "./request-limits.ts";

const codeOf = (p: Promise<unknown>) => p.then(() => "ok", (e) => ConnectError.from(e).code);

function trickle(chunks: Uint8Array[], gapMs: number, then: "end" | "stall" = "end"): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream({
    async pull(c) {
      if (i > 0) await Bun.sleep(gapMs);
      if (i < chunks.length) return c.enqueue(chunks[i++]);
      if (then === "end") c.close();
      else await new Promise(() => {});
    },
  });
}
const post = (body: BodyInit, headers: Record<string, string> = {}) => new Request("http://x/", { method: "POST", body, headers, duplex: "half" } as RequestInit);

test("a body within the cap and the deadline is read whole", async () => {
  const body = await readBodyWithin(post(trickle([new Uint8Array([1, 2]), new Uint8Array([3])], 5)), 10, 1000);
  expect([...body]).toEqual([1, 2, 3]);
});

test("a Content-Length over the cap is refused before any byte is read", async () => {
  let pulled = 0;
  const body = new ReadableStream({ pull: (c) => void (pulled++, c.enqueue(new Uint8Array(1))) });
  const req = new Request("http://x/", { method: "POST", body, headers: { "content-length": "104857600" }, duplex: "half" } as RequestInit);
  expect(await codeOf(readBodyWithin(req, 1024, 1000))).toBe(Code.ResourceExhausted);
  expect(pulled).toBeLessThanOrEqual(1); // the stream's own first pull, not ours
});

test("a streamed body past the cap is refused as soon as it passes it", async () => {
  let sent = 0;
  const body = new ReadableStream({ pull: (c) => void (sent++, c.enqueue(new Uint8Array(600))) });
  expect(await codeOf(readBodyWithin(post(body), 1024, 1000))).toBe(Code.ResourceExhausted);
  expect(sent).toBeLessThan(5);
});

test("a body that stalls, or trickles, past the deadline gets DEADLINE_EXCEEDED", async () => {
  expect(await codeOf(readBodyWithin(post(trickle([new Uint8Array(1)], 0, "stall")), 1024, 100))).toBe(Code.DeadlineExceeded);
  const drip = trickle(Array.from({ length: 100 }, () => new Uint8Array(1)), 30);
  const t0 = Date.now();
  expect(await codeOf(readBodyWithin(post(drip), 1024, 200))).toBe(Code.DeadlineExceeded);
  expect(Date.now() - t0).toBeLessThan(1000);
});

test("deadlines past 2^31-1 ms are clamped to it, never left to fire at once", () => {
  expect(clampDeadline(grpcTimeoutMs("99999999H"))).toBe(MAX_DEADLINE_MS);
  expect(clampDeadline(connectTimeoutMs("9999999999"))).toBe(MAX_DEADLINE_MS);
  expect(clampDeadline(1500)).toBe(1500);
  expect(clampDeadline(undefined)).toBeUndefined();
  const h = new Headers({ "grpc-timeout": "99999999H", "connect-timeout-ms": "9999999999" });
  clampDeadlineHeaders((n) => h.get(n), (n, v) => h.set(n, v), { grpc: grpcTimeoutMs, connect: connectTimeoutMs });
  expect([h.get("grpc-timeout"), h.get("connect-timeout-ms")]).toEqual(["2147483S", String(MAX_DEADLINE_MS)]);
  expect(grpcTimeoutMs(h.get("grpc-timeout"))).toBeLessThanOrEqual(MAX_DEADLINE_MS);
  const small = new Headers({ "grpc-timeout": "5S" });
  clampDeadlineHeaders((n) => small.get(n), (n, v) => small.set(n, v), { grpc: grpcTimeoutMs, connect: connectTimeoutMs });
  expect(small.get("grpc-timeout")).toBe("5S");
});
