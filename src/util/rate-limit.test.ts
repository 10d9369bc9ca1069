import { expect, test } from "bun:test";
import { OncePer } from "./rate-limit.ts";

test("a key is let through once per window, and the next line says how many were held back", () => {
  let now = 0;
  const once = new OncePer(600_000, { now: () => now });
  expect(once.take(42)).toEqual({ allowed: true, suppressed: 0 });
  now += 5_000;
  expect(once.take(42).allowed).toBe(false);
  expect(once.take(7).allowed).toBe(true); // other keys are independent
  now += 5_000;
  expect(once.take(42).allowed).toBe(false);
  now = 600_000;
  expect(once.take(42)).toEqual({ allowed: true, suppressed: 2 });
});
