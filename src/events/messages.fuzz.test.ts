/**
 * 100,000 random and mutated bodies through decodeEvent: it never throws,
 * every valid one decodes, every refusal carries a reason, and no body
 * pollutes Object.prototype.
 */
import { expect, test } from "bun:test";
import { decodeEvent } from "./messages.ts";
import { fuzzCases } from "../../test/support/fuzz-bodies.ts";

test("decoding 100,000 random and mutated bodies never throws and always says why it refuses", () => {
  const cases = fuzzCases(100_000, 20261126, { servers: [1, 2, 3], sessions: [10, 11] });
  let refused = 0;
  for (const c of cases) {
    const d = decodeEvent(c.routingKey, c.body);
    if (c.valid) expect(d.ok).toBe(true);
    if (!d.ok) {
      refused++;
      expect(d.reason.length).toBeGreaterThan(0);
    }
  }
  expect(refused).toBeGreaterThan(30_000);
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
});
