import { describe, expect, test } from "bun:test";
import { minuteOf, objectKey, parseObjectKey } from "./keys.ts";

describe("minuteOf", () => {
  test("is the start of the UTC minute", () => {
    expect(minuteOf(Date.parse("2026-01-02T15:04:59.999Z"))).toBe(Date.parse("2026-01-02T15:04:00Z"));
    expect(minuteOf(Date.parse("2026-01-02T15:04:00Z"))).toBe(Date.parse("2026-01-02T15:04:00Z"));
    expect(minuteOf(-1)).toBe(-60_000);
  });
});

describe("objectKey", () => {
  const minute = Date.parse("2026-03-04T05:06:00Z");

  test("is upstream's layout, zero-padded UTC", () => {
    expect(objectKey(3, 7, minute, 0)).toBe("logs/sgc-3/session-7/2026/03/04/05/06.log.gz");
  });

  test("later parts of a minute get their number", () => {
    expect(objectKey(3, 7, minute, 1)).toBe("logs/sgc-3/session-7/2026/03/04/05/06.1.log.gz");
    expect(objectKey(3, 7, minute, 12)).toBe("logs/sgc-3/session-7/2026/03/04/05/06.12.log.gz");
  });

  test("refuses a time that is not a minute start, and bad ids", () => {
    expect(() => objectKey(3, 7, minute + 1, 0)).toThrow(/start of a minute/);
    expect(() => objectKey(-1, 7, minute, 0)).toThrow(/sgcId/);
    expect(() => objectKey(3, 1.5, minute, 0)).toThrow(/sessionId/);
    expect(() => objectKey(3, 7, minute, -1)).toThrow(/part/);
  });

  test("parseObjectKey is its inverse", () => {
    for (const [m, part] of [[minute, 0], [minute, 3], [Date.parse("0042-02-29T23:59:00Z"), 1], [Date.parse("1969-12-31T23:59:00Z"), 0]]) {
      expect(parseObjectKey(objectKey(11, 22, m, part))).toEqual({ sgcId: 11, sessionId: 22, minuteMs: m, part });
    }
  });

  test("parseObjectKey refuses other keys and impossible dates", () => {
    for (const key of [
      "logs/sgc-3/session-7/2026/02/30/05/06.log.gz",
      "logs/sgc-3/session-7/2026/13/04/05/06.log.gz",
      "logs/sgc-03/session-7/2026/03/04/05/06.log.gz",
      "logs/sgc-3/session-7/2026/03/04/05/06.0.log.gz",
      "logs/sgc-3/session-7/2026/03/04/05/06.log",
      "backups/3/2/9.tar.gz",
    ]) expect(parseObjectKey(key)).toBeNull();
  });
});
