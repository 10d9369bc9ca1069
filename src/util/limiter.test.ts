import { expect, test } from "bun:test";
import { createLimiter, LimiterFull, LimiterTimeout } from "./limiter.ts";

const gate = () => {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  return { opened, open };
};

test("at most `concurrency` run at once; the others wait their turn in order", async () => {
  const l = createLimiter({ concurrency: 2, maxWaiting: 10, maxWaitMs: 5000 });
  const gates = [gate(), gate(), gate(), gate()];
  const order: number[] = [];
  const runs = gates.map((g, i) => l.run(async () => (order.push(i), await g.opened, i)));
  await Bun.sleep(1);
  expect([l.running(), l.waiting(), order]).toEqual([2, 2, [0, 1]]);
  gates[1]!.open();
  await Bun.sleep(1);
  expect(order).toEqual([0, 1, 2]);
  for (const g of gates) g.open();
  expect(await Promise.all(runs)).toEqual([0, 1, 2, 3]);
  expect([l.running(), l.waiting()]).toEqual([0, 0]);
});

test("past maxWaiting a task is refused at once; a wait past maxWaitMs is refused; a failing task frees its turn", async () => {
  const l = createLimiter({ concurrency: 1, maxWaiting: 1, maxWaitMs: 30 });
  const g = gate();
  const first = l.run(() => g.opened);
  const waiting = l.run(async () => "late");
  await expect(l.run(async () => "x")).rejects.toBeInstanceOf(LimiterFull);
  await expect(waiting).rejects.toBeInstanceOf(LimiterTimeout);
  expect(l.waiting()).toBe(0);
  g.open();
  await first;
  await expect(l.run(() => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
  expect(await l.run(async () => "free again")).toBe("free again");
  expect(l.running()).toBe(0);
});
