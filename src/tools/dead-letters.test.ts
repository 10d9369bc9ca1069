import { describe, expect, test } from "bun:test";
import type { HeldDelivery } from "../amqp/queue-reader.ts";
import { describeDeadLetter, formatAge, globToRegExp, matcher, replayProperties, table } from "./dead-letters.ts";

const ours = (headers: Record<string, unknown>, extra: Partial<HeldDelivery> = {}): HeldDelivery => ({
  tag: 1,
  exchange: "",
  routingKey: "processor-events-dlq",
  properties: { contentType: "application/json", deliveryMode: 2, expiration: "604800000", headers: headers as never },
  body: new TextEncoder().encode('{"session_id":7}'),
  ...extra,
});

describe("describeDeadLetter", () => {
  test("reads the processor's own headers", () => {
    const d = describeDeadLetter(
      ours({ "x-death-reason": "session 7 does not exist", "x-attempts": 2, "x-original-exchange": "manman", "x-original-routing-key": "status.session.7", "x-dead-lettered-at": "2026-01-02T03:04:05.000Z" }),
      4,
    );
    expect(d).toMatchObject({ position: 4, exchange: "manman", routingKey: "status.session.7", reason: "session 7 does not exist", attempts: 2, deadLetteredAt: Date.parse("2026-01-02T03:04:05Z") });
  });

  test("reads RabbitMQ's x-death when the broker dead-lettered it itself", () => {
    const time = new Date("2026-01-02T03:04:05Z");
    const d = describeDeadLetter(ours({ "x-death": [{ reason: "rejected", count: 3, exchange: "manman", "routing-keys": ["status.host.2"], time, queue: "processor-events" }] }), 1);
    expect(d).toMatchObject({ exchange: "manman", routingKey: "status.host.2", reason: "rejected (dead-lettered by RabbitMQ)", attempts: 3, deadLetteredAt: time.getTime() });
  });

  test("without any header: replayed to manman under its own routing key, reason and age unknown", () => {
    const d = describeDeadLetter(ours({}, { routingKey: "status.session.9" }), 1);
    expect(d).toMatchObject({ exchange: "manman", routingKey: "status.session.9", reason: "", attempts: undefined, deadLetteredAt: undefined });
  });

  test("a message first published to the default exchange is replayed to manman", () => {
    expect(describeDeadLetter(ours({ "x-original-exchange": "", "x-original-routing-key": "status.session.7" }), 1).exchange).toBe("manman");
  });
});

describe("filters", () => {
  test("--match is a glob over the whole original routing key: * any run of characters, ? one; nothing else is special", () => {
    expect(globToRegExp("status.session.*").test("status.session.7")).toBe(true);
    expect(globToRegExp("status.*").test("status.session.7")).toBe(true);
    expect(globToRegExp("status.session.?").test("status.session.17")).toBe(false);
    expect(globToRegExp("status.session").test("status.sessionX")).toBe(false);
    expect(globToRegExp("a.[b]").test("a.[b]")).toBe(true);
  });

  test("--reason matches part of the reason in any case; both filters must hold", () => {
    const d = describeDeadLetter(ours({ "x-death-reason": "Session 7 does not exist", "x-original-routing-key": "status.session.7" }), 1);
    expect(matcher({})(d)).toBe(true);
    expect(matcher({ reason: "DOES NOT" })(d)).toBe(true);
    expect(matcher({ reason: "not JSON" })(d)).toBe(false);
    expect(matcher({ match: "status.session.*", reason: "exist" })(d)).toBe(true);
    expect(matcher({ match: "status.host.*", reason: "exist" })(d)).toBe(false);
  });
});

test("a replayed copy keeps the original's properties and headers, loses the dead-letter ones and the dead-letter expiration, and carries the run's id", () => {
  const d = describeDeadLetter(
    ours({ traceparent: "t", "x-death-reason": "r", "x-attempts": 1, "x-original-exchange": "manman", "x-original-routing-key": "k", "x-dead-lettered-at": "x", "x-death": [], "x-first-death-queue": "q" }),
    1,
  );
  expect(replayProperties(d, "run-1")).toEqual({ contentType: "application/json", deliveryMode: 2, headers: { traceparent: "t", "x-replay-id": "run-1" } });
});

test("ages read at a glance", () => {
  expect([undefined, 0, 59_000, 60_000, 3_600_000, 3_660_000, 86_400_000, 90_000_000].map(formatAge)).toEqual(["?", "0s", "59s", "1m", "1h", "1h1m", "1d", "1d1h"]);
});

test("table pads every column but the last", () => {
  expect(table(["#", "KEY", "REASON"], [["1", "status.session.7", "why"], ["10", "k", "because"]])).toEqual(["#   KEY               REASON", "1   status.session.7  why", "10  k                 because"]);
});
