import { expect, test } from "bun:test";
import { connectTimeoutMs, envelop, grpcTimeoutMs, joinChunks, oneMessage } from "./framing.ts";

test("grpc-timeout values become milliseconds", () => {
  expect(grpcTimeoutMs("1H")).toBe(3_600_000);
  expect(grpcTimeoutMs("2M")).toBe(120_000);
  expect(grpcTimeoutMs("3S")).toBe(3000);
  expect(grpcTimeoutMs("250m")).toBe(250);
  expect(grpcTimeoutMs("5000u")).toBe(5);
  expect(grpcTimeoutMs("99999999n")).toBeCloseTo(99.999999);
});

test("absent or malformed grpc-timeout means no deadline", () => {
  for (const v of [undefined, "", "10", "1s", "123456789S", "-1S", "1.5S"]) expect(grpcTimeoutMs(v)).toBeUndefined();
});

test("connect-timeout-ms is whole milliseconds, up to 10 digits", () => {
  expect(connectTimeoutMs("1500")).toBe(1500);
  for (const v of [null, "", "1.5", "-1", "12345678901"]) expect(connectTimeoutMs(v)).toBeUndefined();
});

test("a message is its length-prefixed bytes; one request message reads back, anything else does not", () => {
  const m = envelop(new Uint8Array([1, 2, 3]));
  expect([...m]).toEqual([0, 0, 0, 0, 3, 1, 2, 3]);
  expect([...envelop(new Uint8Array([9]), 0x80)]).toEqual([0x80, 0, 0, 0, 1, 9]);
  expect([...oneMessage(m)!]).toEqual([1, 2, 3]);
  expect(oneMessage(joinChunks([m, m]))).toBeUndefined();
  expect(oneMessage(m.subarray(0, 4))).toBeUndefined();
  expect(oneMessage(envelop(new Uint8Array([1]), 1))).toBeUndefined();
  expect(joinChunks([m])).toBe(m);
});
