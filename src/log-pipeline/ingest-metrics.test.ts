import { expect, test } from "bun:test";
import { createLogger } from "../log.ts";
import { Metrics } from "../metrics.ts";
import { QueueDepthWatch } from "./ingest-metrics.ts";

function setup() {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({ level: "debug", write: (l) => void lines.push(JSON.parse(l)) });
  const clock = { t: 0, now: () => clock.t };
  return { lines, clock, metrics: new Metrics(), watch: new QueueDepthWatch(100, log, clock) };
}

test("the queue's depth is a gauge; below its cap nothing is counted or said", () => {
  const { lines, metrics, watch } = setup();
  watch.observe(metrics, 42);
  expect(metrics.get("manman_log_queue_lines")).toBe(42);
  expect(metrics.get("manman_log_queue_full_total")).toBe(0);
  expect(lines).toEqual([]);
});

test("an unanswered read changes nothing", () => {
  const { metrics, watch } = setup();
  watch.observe(metrics, 7);
  watch.observe(metrics, undefined);
  expect(metrics.get("manman_log_queue_lines")).toBe(7);
});

test("a full queue is counted at every check and said at warn once a minute, with the checks since", () => {
  const { lines, clock, metrics, watch } = setup();
  for (clock.t = 0; clock.t <= 60_000; clock.t += 1000) watch.observe(metrics, 100);
  expect(metrics.get("manman_log_queue_full_total")).toBe(61);
  expect(lines.map((l) => [l.level, l.full_checks])).toEqual([
    ["warn", 1],
    ["warn", 60],
  ]);
  expect(String(lines[0]!.msg)).toContain("drops the oldest");
});
