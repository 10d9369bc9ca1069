import { expect, test } from "bun:test";
import { GroupWriter } from "./groups.ts";

/** A statement that records the groups it ran and answers key × 10, failing any group holding a key in `bad`. */
function statement(bad: Set<number> = new Set()) {
  const groups: number[][] = [];
  return {
    groups,
    run: async (inputs: number[]) => {
      groups.push([...inputs]);
      if (inputs.some((k) => bad.has(k))) throw new Error(`row ${inputs.find((k) => bad.has(k))} failed`);
      return new Map(inputs.filter((k) => k !== 404).map((k) => [k, k * 10]));
    },
    missing: (k: number) => -k,
  };
}

test("what arrives in one turn of the event loop is one statement, and each caller gets its own row's answer", async () => {
  const s = statement();
  const w = new GroupWriter(s);
  const answers = await Promise.all([1, 2, 3].map((k) => w.write(k, k)));
  expect(answers).toEqual([10, 20, 30]);
  expect(s.groups).toEqual([[1, 2, 3]]);
  expect(await w.write(4, 4)).toBe(40);
  expect(s.groups).toHaveLength(2);
});

test("a key twice in one group is one row, answered to both; a key the statement did not return gets missing()", async () => {
  const s = statement();
  const w = new GroupWriter(s);
  expect(await Promise.all([w.write(7, 7), w.write(7, 7), w.write(404, 404)])).toEqual([70, 70, -404]);
  expect(s.groups).toEqual([[7, 404]]);
});

test("when the group's statement fails, each key runs alone: only the failing row's callers see the error", async () => {
  const s = statement(new Set([2]));
  const w = new GroupWriter(s);
  const results = await Promise.allSettled([1, 2, 3].map((k) => w.write(k, k)));
  expect(results.map((r) => (r.status === "fulfilled" ? r.value : (r.reason as Error).message))).toEqual([10, "row 2 failed", 30]);
  expect(s.groups).toEqual([[1, 2, 3], [1], [2], [3]]);
});

test("a group of one that fails rejects at once, without running again", async () => {
  const s = statement(new Set([5]));
  const w = new GroupWriter(s);
  await expect(w.write(5, 5)).rejects.toThrow("row 5 failed");
  expect(s.groups).toEqual([[5]]);
});

test("a full group (1,000 rows) goes at once; the rest follow in the next", async () => {
  const s = statement();
  const w = new GroupWriter(s);
  await Promise.all(Array.from({ length: 1500 }, (_, k) => w.write(k + 1, k + 1)));
  expect(s.groups.map((g) => g.length)).toEqual([1000, 500]);
});

test("a lost connection fails the whole group at once: its callers run again, no statement per row", async () => {
  const groups: number[][] = [];
  const lost = Object.assign(new Error("write CONNECTION_CLOSED"), { code: "CONNECTION_CLOSED" });
  const w = new GroupWriter({
    run: async (inputs: number[]) => {
      groups.push([...inputs]);
      throw lost;
    },
    missing: () => 0,
  });
  const results = await Promise.allSettled([1, 2, 3].map((k) => w.write(k, k)));
  expect(results.every((r) => r.status === "rejected" && r.reason === lost)).toBe(true);
  expect(groups).toEqual([[1, 2, 3]]);
});

test("while two statements run, what arrives waits and goes as one group when one ends", async () => {
  const groups: number[][] = [];
  const release: (() => void)[] = [];
  const w = new GroupWriter({
    run: (inputs: number[]) => {
      groups.push([...inputs]);
      return new Promise<Map<number, number>>((resolve) => release.push(() => resolve(new Map(inputs.map((k) => [k, k])))));
    },
    missing: () => 0,
  });
  const turn = () => new Promise((r) => setImmediate(r));
  const all: Promise<number>[] = [];
  for (let k = 1; k <= 2; k++) {
    all.push(w.write(k, k));
    await turn();
  }
  expect(groups).toEqual([[1], [2]]);
  for (let k = 3; k <= 6; k++) {
    all.push(w.write(k, k));
    await turn();
  }
  expect(groups).toHaveLength(2); // 3 to 6 wait
  release.shift()!();
  for (let i = 0; i < 5 && groups.length < 3; i++) await turn();
  expect(groups.at(-1)).toEqual([3, 4, 5, 6]);
  for (const r of release.splice(0)) r();
  expect(await Promise.all(all)).toEqual([1, 2, 3, 4, 5, 6]);
});
