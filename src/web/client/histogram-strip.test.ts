import { expect, test } from "bun:test";
import { stripBuckets } from "./histogram-strip.ts";

const M = 60_000;
const T = Date.UTC(2026, 10, 25, 14, 0);
const bucket = (timestamp: number, stdoutLines = 0, stderrLines = 0, hostLines = 0) => ({ timestamp, stdoutLines, stderrLines, hostLines });
const line = (timestamp: number, source = "stdout") => ({ timestamp, source, message: "x" });

test("the archive's buckets, with live lines after its end counted into buckets of the same width", () => {
  const archived = { buckets: [bucket(T, 5), bucket(T + M, 0, 2)], bucketSeconds: 60, sessionEnd: T + M + 30_000 };
  const live = [line(T + M + 10_000), line(T + M + 40_000, "stderr"), line(T + 3 * M + 5, "host"), line(T + 3 * M, "notice")];
  const s = stripBuckets(archived, live);
  expect(s.bucketMs).toBe(M);
  // The line before the archive's end is archived already: not counted twice.
  expect(s.buckets).toEqual([bucket(T, 5), bucket(T + M, 0, 3), bucket(T + 2 * M), bucket(T + 3 * M, 0, 0, 1)]);
  expect(archived.buckets[1]).toEqual(bucket(T + M, 0, 2)); // the answer itself is left alone
});

test("nothing archived yet: buckets from the live lines, width as upstream picks it", () => {
  const s = stripBuckets({ buckets: [], bucketSeconds: 60 }, [line(T + 5), line(T + 2 * M), line(T + 2 * M + 1, "stderr")]);
  expect(s.buckets).toEqual([bucket(T, 1), bucket(T + M), bucket(T + 2 * M, 1, 1)]);
  expect(stripBuckets({ buckets: [], bucketSeconds: 60 }, []).buckets).toEqual([]);
});

test("live lines far past the archive do not stretch the strip without bound", () => {
  const archived = { buckets: [bucket(T, 1)], bucketSeconds: 60, sessionEnd: T };
  expect(stripBuckets(archived, [line(T + 5000 * M)]).buckets).toHaveLength(1);
});
