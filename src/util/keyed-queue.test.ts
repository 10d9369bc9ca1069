import { expect, test } from "bun:test";
import { KeyedQueue } from "./keyed-queue.ts";

const tick = () => new Promise((r) => setTimeout(r, 1));

test("tasks of one key run in order, one at a time", async () => {
  const q = new KeyedQueue();
  const log: string[] = [];
  let active = 0;
  const jobs = [5, 1, 3].map((delay, i) =>
    q.run("a", async () => {
      active++;
      expect(active).toBe(1);
      log.push(`start ${i}`);
      await new Promise((r) => setTimeout(r, delay));
      log.push(`end ${i}`);
      active--;
    }),
  );
  await Promise.all(jobs);
  expect(log).toEqual(["start 0", "end 0", "start 1", "end 1", "start 2", "end 2"]);
});

test("different keys run concurrently", async () => {
  const q = new KeyedQueue();
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const slow = q.run("a", () => gate);
  let otherDone = false;
  const other = q.run("b", async () => {
    otherDone = true;
  });
  await other;
  expect(otherDone).toBe(true);
  release();
  await slow;
});

test("a failing task does not stop the next one of its key", async () => {
  const q = new KeyedQueue();
  const first = q.run("a", async () => {
    throw new Error("boom");
  });
  const second = q.run("a", async () => 42);
  await expect(first).rejects.toThrow("boom");
  expect(await second).toBe(42);
});

test("idle waits for everything and keys are forgotten when done", async () => {
  const q = new KeyedQueue();
  for (let i = 0; i < 10; i++) void q.run(`k${i % 3}`, tick);
  expect(q.pending).toBe(10);
  await q.idle();
  await tick();
  expect(q.pending).toBe(0);
  expect(q.keys).toBe(0);
});
