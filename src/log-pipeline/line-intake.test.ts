import { expect, test } from "bun:test";
import { createLogger } from "../log.ts";
import { createLogHub } from "../logs/hub.ts";
import { LineIntake, MalformedWarnings } from "./line-intake.ts";

function setup() {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({ level: "debug", write: (l) => void lines.push(JSON.parse(l)) });
  let t = 10_000;
  const clock = { now: () => t };
  const hub = createLogHub({ maxLines: 10, ttlMs: 60_000, maxBytes: 1 << 20, maxPendingBytes: 1 << 20 });
  const warnings = new MalformedWarnings(log, 1000, clock);
  const intake = new LineIntake({ hub, maxMessageBytes: 20, maxBodyBytes: 300, log, warnings });
  return { lines, hub, intake, warnings, advance: (ms: number) => void (t += ms) };
}
const body = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

test("good lines reach the hub and are counted; cut ones too; bad ones are only counted", () => {
  const { hub, intake } = setup();
  intake.take(body({ session_id: 3, timestamp: 1, source: "stdout", message: "hi" }), "logs.session.3");
  intake.take(body({ session_id: 3, timestamp: 2, source: "stderr", message: "x".repeat(100) }), "logs.session.3");
  intake.take(new TextEncoder().encode("{"), "logs.session.3");
  expect(hub.stats().lines).toBe(2);
  expect(intake.ingested).toBe(2);
  expect(intake.takeCounts()).toEqual({ ingested: 2, truncated: 1, malformed: 1, tooLarge: 0, failed: 0 });
  expect(intake.takeCounts()).toEqual({ ingested: 0, truncated: 0, malformed: 0, tooLarge: 0, failed: 0 });
});

test("one malformed warning per window; the rest are summed once it is over", () => {
  const { lines, warnings, advance } = setup();
  for (let i = 0; i < 4; i++) warnings.skipped(`logs.session.${i}`, `reason ${i}`);
  warnings.summarise();
  expect(lines.map((l) => l.msg)).toEqual(["skipped a malformed log line"]);
  advance(1000);
  warnings.summarise();
  expect(lines[1]).toMatchObject({ msg: "skipped malformed log lines", count: 3, last_routing_key: "logs.session.3", last_reason: "reason 3" });
  warnings.skipped("k", "r");
  expect(lines).toHaveLength(2);
  advance(1000);
  warnings.skipped("k", "r");
  expect(lines[2]).toMatchObject({ msg: "skipped a malformed log line", also_skipped_since_last: 1 });
});

test("a body over maxBodyBytes is skipped before it is parsed, counted as too large, with the reason", () => {
  const { hub, intake, lines } = setup();
  // Valid JSON, so only the size can refuse it.
  intake.take(body({ session_id: 3, timestamp: 1, source: "stdout", message: "z".repeat(400) }), "logs.session.3");
  expect(hub.stats().lines).toBe(0);
  expect(intake.takeCounts()).toMatchObject({ ingested: 0, malformed: 0, tooLarge: 1 });
  expect(String(lines[0].reason)).toMatch(/^body of \d+ bytes exceeds 300/);
});
