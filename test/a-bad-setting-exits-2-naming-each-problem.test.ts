import { expect, test } from "bun:test";
import { spawnService } from "./support/subprocess.ts";

test("a bad setting exits with status 2 and one line per problem naming the variable", async () => {
  const proc = spawnService({ PREFETCH: "lots", STALE_HOST_THRESHOLD_SECONDS: "-1" });
  expect(await proc.exited).toBe(2);
  const stderr = proc.lines.map((l) => l.stderr ?? "").join("").trim().split("\n");
  expect(stderr).toHaveLength(2);
  expect(stderr.some((l) => l.includes("PREFETCH") && l.includes("whole number"))).toBe(true);
  expect(stderr.some((l) => l.includes("STALE_HOST_THRESHOLD_SECONDS") && l.includes("at least 1"))).toBe(true);
});
