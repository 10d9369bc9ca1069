import { expect, test } from "bun:test";
import { createLogger } from "./log.ts";

function capture(level: "debug" | "info" | "warn" | "error" = "info") {
  const lines: string[] = [];
  const logger = createLogger({ level, write: (l) => lines.push(l), now: () => new Date("2026-11-25T12:00:00.000Z") });
  return { logger, lines, entries: () => lines.map((l) => JSON.parse(l)) };
}

test("one JSON object per line: time, level, msg, then the fields", () => {
  const { logger, lines, entries } = capture();
  logger.info("applied", { routing_key: "status.session.7", session_id: 7, detail: "session starting -> running" });
  expect(lines).toHaveLength(1);
  expect(lines[0]!.endsWith("\n")).toBe(true);
  expect(lines[0]!.indexOf("\n")).toBe(lines[0]!.length - 1);
  expect(entries()[0]).toEqual({ time: "2026-11-25T12:00:00.000Z", level: "info", msg: "applied", routing_key: "status.session.7", session_id: 7, detail: "session starting -> running" });
});

test("LOG_LEVEL picks the least level shown; heartbeats at debug stay out at info", () => {
  const { logger, entries } = capture("info");
  logger.debug("heartbeat", { server_id: 1 });
  logger.warn("dead-lettered event message", { reason: "x" });
  expect(entries().map((e) => e.msg)).toEqual(["dead-lettered event message"]);
});

test("errors become their message, bigints numbers, and children carry their fields", () => {
  const { logger, entries } = capture();
  logger.child({ component: "amqp" }).error("failed", new Error("boom"), { server_id: 42n });
  expect(entries()[0]).toMatchObject({ component: "amqp", error: "boom", server_id: 42 });
});

test("a message with newlines still makes one line", () => {
  const { logger, lines } = capture();
  logger.info("multi\nline", { error: "a\nb" });
  expect(lines).toHaveLength(1);
  expect(lines[0]!.split("\n")).toHaveLength(2);
});
