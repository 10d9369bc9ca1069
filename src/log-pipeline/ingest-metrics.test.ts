import { expect, test } from "bun:test";
import { createLogger } from "../log.ts";
import { Metrics } from "../metrics.ts";
import { QueueDepthWatch } from "./ingest-metrics.ts";

function setup() {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({ level: "debug", write: (l) => void lines.push(JSON.parse(l)) });
  return { lines, metrics: new Metrics(), watch: new QueueDepthWatch(100, log) };
}

test("the queue's depth is a gauge; below its cap nothing is counted or said", () => {
  const { lines, metrics, watch } = setup();
  watch.observe(metrics, 42, 0);
  expect(metrics.get("manman_log_queue_lines")).toBe(42);
  expect(metrics.get("manman_log_queue_full_total")).toBe(0);
  expect(lines).toEqual([]);
});

test("an unanswered read changes nothing", () => {
  const { metrics, watch } = setup();
  watch.observe(metrics, 7, 0);
  watch.observe(metrics, undefined, 1000);
  expect(metrics.get("manman_log_queue_lines")).toBe(7);
});

test("a full queue is counted at every check and said at warn once a minute, with the checks since", () => {
  const { lines, metrics, watch } = setup();
  for (let t = 0; t <= 60_000; t += 1000) watch.observe(metrics, 100, t);
  expect(metrics.get("manman_log_queue_full_total")).toBe(61);
  expect(lines.map((l) => [l.level, l.full_checks])).toEqual([
    ["warn", 1],
    ["warn", 60],
  ]);
  expect(String(lines[0]!.msg)).toContain("drops the oldest");
});
