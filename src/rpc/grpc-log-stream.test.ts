import { expect, test } from "bun:test";
import { grpcTimeoutMs } from "./grpc-log-stream.ts";

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
