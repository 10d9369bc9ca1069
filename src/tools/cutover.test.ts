import { describe, expect, test } from "bun:test";
import { cutover, type CutoverBroker, type QueueState } from "./cutover.ts";

/** A broker holding `queues`; records what was removed. */
function fakeBroker(queues: Record<string, QueueState>, refuse = new Set<string>()): CutoverBroker & { removed: string[] } {
  const removed: string[] = [];
  return {
    removed,
    inspect: async (name) => queues[name],
    remove: async (name) => {
      if (refuse.has(name)) throw new Error("PRECONDITION_FAILED - queue in use");
      const q = queues[name];
      delete queues[name];
      removed.push(name);
      return q?.messages ?? 0;
    },
  };
}

function run(broker: CutoverBroker, ids: number[], dryRun: boolean, isOwnQueue = (_: string) => false) {
  const out: string[] = [];
  const err: string[] = [];
  const result = cutover({ broker, sessionIds: async () => ids, isOwnQueue, print: (l) => void out.push(l), warn: (l) => void err.push(l) }, { dryRun });
  return result.then((r) => ({ ...r, out, err }));
}

const leftovers = (): Record<string, QueueState> => ({
  "log-processor-lifecycle": { messages: 2, consumers: 0 },
  "log-processor-lifecycle-dlq": { messages: 1, consumers: 0 },
  "logs.session.7": { messages: 3, consumers: 0 },
  "logs.session.8": { messages: 0, consumers: 0 },
  "something-else": { messages: 5, consumers: 0 },
});

describe("cutover", () => {
  test("removes the lifecycle queues and each known session's log queue, one line each, then a summary", async () => {
    const broker = fakeBroker(leftovers());
    const r = await run(broker, [7, 8, 9], false);
    expect(r.ok).toBe(true);
    expect(broker.removed).toEqual(["log-processor-lifecycle", "log-processor-lifecycle-dlq", "logs.session.7", "logs.session.8"]);
    expect(r.out.slice(0, 4)).toEqual([
      "removed log-processor-lifecycle (2 messages)",
      "removed log-processor-lifecycle-dlq (1 message)",
      "removed logs.session.7 (3 messages)",
      "removed logs.session.8 (0 messages)",
    ]);
    expect(r.out[4]).toStartWith("removed 4 queues holding 6 messages");
    expect(r.err).toEqual([]);
  });

  test("a second run finds nothing and says so", async () => {
    const broker = fakeBroker(leftovers());
    await run(broker, [7, 8], false);
    const again = await run(broker, [7, 8], false);
    expect(again.ok).toBe(true);
    expect(again.removed).toEqual([]);
    expect(again.out).toHaveLength(1);
    expect(again.out[0]).toStartWith("nothing to remove:");
    expect(again.out[0]).toContain("2 sessions");
  });

  test("--dry-run reports what it would remove and removes nothing", async () => {
    const broker = fakeBroker(leftovers());
    const r = await run(broker, [7], true);
    expect(r.ok).toBe(true);
    expect(broker.removed).toEqual([]);
    expect(r.out).toContain("would remove logs.session.7 (3 messages)");
    expect(r.out.at(-1)).toStartWith("dry run: would remove 3 queues holding 6 messages; nothing was changed");
  });

  test("a queue with a consumer means the old log-processor still runs: nothing is removed, the run fails", async () => {
    const queues = leftovers();
    queues["logs.session.7"]!.consumers = 1;
    const broker = fakeBroker(queues);
    const r = await run(broker, [7, 8], false);
    expect(r.ok).toBe(false);
    expect(broker.removed).toEqual([]);
    expect(r.err.join("\n")).toContain("logs.session.7 has 1 consumer");
    expect(r.err.join("\n")).toContain("still seems to be running");
  });

  test("a queue that cannot be removed is reported, the others are still removed, the run fails", async () => {
    const broker = fakeBroker(leftovers(), new Set(["log-processor-lifecycle"]));
    const r = await run(broker, [7], false);
    expect(r.ok).toBe(false);
    expect(broker.removed).toEqual(["log-processor-lifecycle-dlq", "logs.session.7"]);
    expect(r.err[0]).toContain("could not remove log-processor-lifecycle: PRECONDITION_FAILED");
    expect(r.out.at(-1)).toBe("removed 2 queues holding 4 messages; 1 could not be removed (see above)");
  });

  test("tells where it is while checking and removing, for the progress line", async () => {
    const steps: string[] = [];
    const broker = fakeBroker(leftovers());
    await cutover({ broker, sessionIds: async () => [7, 8], isOwnQueue: () => false, print: () => {}, warn: () => {}, progress: (t) => void steps.push(t) }, { dryRun: false });
    expect(steps.slice(0, 4)).toEqual(["checking queues: 1 of 4 25%", "checking queues: 2 of 4 50%", "checking queues: 3 of 4 75%", "checking queues: 4 of 4 100%"]);
    expect(steps.slice(4)).toEqual(["removing queues: 1 of 4 25%", "removing queues: 2 of 4 50%", "removing queues: 3 of 4 75%", "removing queues: 4 of 4 100%"]);
  });

  test("never touches a queue of its own, even when a leftover's name collides with one", async () => {
    const broker = fakeBroker(leftovers());
    const r = await run(broker, [7], false, (name) => name === "log-processor-lifecycle");
    expect(broker.removed).not.toContain("log-processor-lifecycle");
    expect(r.err[0]).toContain("skipping log-processor-lifecycle");
  });
});
