import { describe, expect, test } from "bun:test";
import { bucketStart, chooseBucket, denseBuckets } from "./histogram.ts";

const S = 1_000;
const MIN = 60 * S;
const H = 60 * MIN;
const D = 24 * H;
const T0 = Date.parse("2026-01-02T00:00:00Z");

describe("chooseBucket", () => {
  test.each([
    [0, 60, "1m"],
    [H - 1, 60, "1m"],
    [H, 300, "5m"],
    [6 * H - 1, 300, "5m"],
    [6 * H, 3600, "1h"],
    [2 * D - 1, 3600, "1h"],
    [2 * D, 86400, "1d"],
    [28 * D - 1, 86400, "1d"],
    [28 * D, 12096, "12096s"], // 28 days / 200
    [400 * D, 172800, "172800s"],
  ])("a range of %d ms gets %d s buckets (%s), as upstream", (range, seconds, label) => {
    expect(chooseBucket(T0, T0 + range)).toEqual({ bucketSeconds: seconds, granularity: label });
  });

  test("an asked-for width is used, with its name when it has one", () => {
    expect(chooseBucket(T0, T0 + H, 10)).toEqual({ bucketSeconds: 10, granularity: "10s" });
    expect(chooseBucket(T0, T0 + H, 300)).toEqual({ bucketSeconds: 300, granularity: "5m" });
  });

  test("no width gives more than 500 buckets", () => {
    expect(chooseBucket(T0, T0 + D, 1)).toEqual({ bucketSeconds: 172, granularity: "172s" });
    expect(chooseBucket(T0, T0 + 10 * H, 60)).toEqual({ bucketSeconds: 72, granularity: "72s" });
  });
});

describe("denseBuckets", () => {
  test("fills every bucket from first to last, empty ones too, by source", () => {
    const b = denseBuckets(T0 + 10 * S, T0 + 3 * MIN + 5 * S, 60, [
      { timestamp: T0 + 59 * S, source: "stdout", lines: 2 },
      { timestamp: T0 + 60 * S, source: "stderr", lines: 1 },
      { timestamp: T0 + 3 * MIN, source: "host", lines: 7 },
      { timestamp: T0 + 3 * MIN, source: "host", lines: 1 },
      { timestamp: T0 + 10 * MIN, source: "host", lines: 100 }, // outside: left out
      { timestamp: T0, source: "syslog", lines: 100 }, // unknown source: left out
    ]);
    expect(b).toEqual([
      { timestamp: T0, stdoutLines: 2, stderrLines: 0, hostLines: 0 },
      { timestamp: T0 + MIN, stdoutLines: 0, stderrLines: 1, hostLines: 0 },
      { timestamp: T0 + 2 * MIN, stdoutLines: 0, stderrLines: 0, hostLines: 0 },
      { timestamp: T0 + 3 * MIN, stdoutLines: 0, stderrLines: 0, hostLines: 8 },
    ]);
  });

  test("an empty or reversed range has no buckets", () => {
    expect(denseBuckets(T0 + MIN, T0, 60, [])).toEqual([]);
    expect(denseBuckets(T0, T0, 60, [])).toHaveLength(1);
  });

  test("bucket starts are multiples of the width, before 1970 too", () => {
    expect(bucketStart(T0 + 61 * S, 60)).toBe(T0 + MIN);
    expect(bucketStart(-1, 60)).toBe(-MIN);
  });
});
