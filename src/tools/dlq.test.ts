import { describe, expect, test } from "bun:test";
import type { HeldDelivery, QueueReader } from "../amqp/queue-reader.ts";
import { listDlq, purgeDlq, replayDlq, showDlq, type DlqDeps } from "./dlq.ts";

interface Stored {
  key: string;
  reason: string;
  body: string;
  replayId?: string;
}

/** A queue in memory with the broker's holding rules: held until removed, the rest back in order on close. */
function fakeQueue(stored: Stored[], behaviour: { unroutable?: Set<string>; failOnPublish?: number } = {}) {
  let queue = [...stored];
  const published: { exchange: string; key: string; body: string; headers: Record<string, unknown> }[] = [];
  const open = (take?: number): QueueReader & { removed: Set<number> } => {
    const held = queue.slice(0, take ?? queue.length);
    const removed = new Set<number>();
    let next = 0;
    let publishes = 0;
    const reader = {
      removed,
      depth: queue.length,
      consumers: 0,
      next: async (): Promise<HeldDelivery | undefined> => {
        const s = held[next];
        if (!s) return undefined;
        next++;
        const headers: Record<string, unknown> = { "x-death-reason": s.reason, "x-attempts": 1, "x-original-exchange": "manman", "x-original-routing-key": s.key };
        if (s.replayId) headers["x-replay-id"] = s.replayId;
        return { tag: next, exchange: "", routingKey: "processor-events-dlq", properties: { headers: headers as never }, body: new TextEncoder().encode(s.body) };
      },
      remove: async (tag: number) => void removed.add(tag),
      publish: async (exchange: string, key: string, body: Uint8Array, props: { headers?: Record<string, unknown> }) => {
        if (++publishes === behaviour.failOnPublish) throw new Error("no publisher confirm within 10000 ms");
        if (behaviour.unroutable?.has(key)) return "unroutable" as const;
        published.push({ exchange, key, body: new TextDecoder().decode(body), headers: props.headers ?? {} });
        return "routed" as const;
      },
      close: async () => {
        queue = queue.filter((s) => !removed.has(held.indexOf(s) + 1));
      },
    };
    return reader;
  };
  return { open, published, contents: () => queue.map((s) => s.key) };
}

function deps(reader: QueueReader) {
  const out: string[] = [];
  const err: string[] = [];
  const d: DlqDeps = { reader, queue: "processor-events-dlq", print: (l) => void out.push(l), warn: (l) => void err.push(l), progress: () => {}, now: () => Date.now() };
  return { d, out, err };
}

const three = (): Stored[] => [
  { key: "status.session.7", reason: "session 7 does not exist", body: '{"session_id":7}' },
  { key: "status.host.2", reason: "not JSON", body: "{oops" },
  { key: "status.session.8", reason: "session 8 does not exist", body: '{"session_id":8}' },
];

async function run<T>(q: ReturnType<typeof fakeQueue>, take: number | undefined, fn: (d: DlqDeps) => Promise<T>) {
  const reader = q.open(take);
  const x = deps(reader);
  const code = await fn(x.d);
  await reader.close();
  return { code, out: x.out, err: x.err };
}

describe("list and show", () => {
  test("list prints the count, then one row per message in queue order, and removes nothing", async () => {
    const q = fakeQueue(three());
    const r = await run(q, undefined, (d) => listDlq(d, { json: false }));
    expect(r.code).toBe(0);
    expect(r.out[0]).toBe("processor-events-dlq: 3 messages");
    expect(r.out[1]).toMatch(/^#\s+AGE\s+ATTEMPTS\s+ROUTING KEY\s+REASON$/);
    expect(r.out.slice(2).map((l) => l.split(/\s{2,}/)[3])).toEqual(["status.session.7", "status.host.2", "status.session.8"]);
    expect(q.contents()).toEqual(["status.session.7", "status.host.2", "status.session.8"]);
  });

  test("list --json is one document", async () => {
    const r = await run(fakeQueue(three()), undefined, (d) => listDlq(d, { json: true }));
    const doc = JSON.parse(r.out.join(""));
    expect(doc.count).toBe(3);
    expect(doc.messages.map((m: { routing_key: string }) => m.routing_key)).toEqual(["status.session.7", "status.host.2", "status.session.8"]);
    expect(doc.messages[1]).toMatchObject({ position: 2, reason: "not JSON", attempts: 1, exchange: "manman" });
  });

  test("show N prints that message's headers and body; a number past the end fails", async () => {
    const q = fakeQueue(three());
    const r = await run(q, 2, (d) => showDlq(d, 2, { json: false }));
    expect(r.code).toBe(0);
    expect(r.out[0]).toBe("message 2 of 3 in processor-events-dlq");
    expect(r.out).toContain("  x-death-reason: not JSON");
    expect(r.out.at(-1)).toBe("{oops");
    const past = await run(q, 9, (d) => showDlq(d, 9, { json: false }));
    expect(past.code).toBe(1);
    expect(past.err[0]).toContain("has no message 9");
    expect(q.contents()).toHaveLength(3);
  });
});

describe("replay", () => {
  test("republishes what matches to its original exchange and key, removes only those, keeps the rest in order", async () => {
    const q = fakeQueue(three());
    const r = await run(q, undefined, (d) => replayDlq(d, { match: "status.session.*" }, "run-1"));
    expect(r.code).toBe(0);
    expect(q.published.map((p) => [p.exchange, p.key, p.body])).toEqual([
      ["manman", "status.session.7", '{"session_id":7}'],
      ["manman", "status.session.8", '{"session_id":8}'],
    ]);
    expect(q.published[0]!.headers).toEqual({ "x-replay-id": "run-1" });
    expect(q.contents()).toEqual(["status.host.2"]);
    expect(r.out.at(-1)).toBe("replayed 2 messages from processor-events-dlq (--match status.session.*)");
  });

  test("--reason and --limit narrow it", async () => {
    const q = fakeQueue(three());
    await run(q, undefined, (d) => replayDlq(d, { reason: "DOES NOT EXIST", limit: 1 }));
    expect(q.published.map((p) => p.key)).toEqual(["status.session.7"]);
    expect(q.contents()).toEqual(["status.host.2", "status.session.8"]);
  });

  test("a copy no queue took is kept in the dead-letter queue and the run fails", async () => {
    const q = fakeQueue(three(), { unroutable: new Set(["status.host.2"]) });
    const r = await run(q, undefined, (d) => replayDlq(d, {}));
    expect(r.code).toBe(1);
    expect(q.contents()).toEqual(["status.host.2"]);
    expect(r.err[0]).toContain("kept #2 status.host.2");
  });

  test("a failed publish stops the run; that message and the rest stay", async () => {
    const q = fakeQueue(three(), { failOnPublish: 2 });
    const r = await run(q, undefined, (d) => replayDlq(d, {}));
    expect(r.code).toBe(1);
    expect(q.contents()).toEqual(["status.host.2", "status.session.8"]);
    expect(r.err[0]).toContain("replay stopped: no publisher confirm");
  });

  test("a message carrying this run's id is its own copy come back, and is not replayed again", async () => {
    const q = fakeQueue([...three(), { key: "status.session.7", reason: "again", body: "{}", replayId: "run-1" }]);
    await run(q, undefined, (d) => replayDlq(d, {}, "run-1"));
    expect(q.published).toHaveLength(3);
    expect(q.contents()).toEqual(["status.session.7"]);
  });
});

describe("purge", () => {
  test("asks first, with the number it will delete; no deletes nothing", async () => {
    const q = fakeQueue(three());
    const asked: string[] = [];
    const r = await run(q, undefined, (d) => purgeDlq(d, { match: "status.session.*" }, { yes: false, confirm: async (question) => (asked.push(question), false) }));
    expect(asked).toEqual(["Delete 2 messages of 3 in processor-events-dlq (--match status.session.*) for good? Type yes to go ahead: "]);
    expect(r.code).toBe(1);
    expect(q.contents()).toHaveLength(3);
  });

  test("yes, or --yes, deletes exactly what matched", async () => {
    const q = fakeQueue(three());
    const r = await run(q, undefined, (d) => purgeDlq(d, { reason: "not json" }, { yes: false, confirm: async () => true }));
    expect(r.code).toBe(0);
    expect(q.contents()).toEqual(["status.session.7", "status.session.8"]);
    let asked = false;
    await run(q, undefined, (d) => purgeDlq(d, { limit: 1 }, { yes: true, confirm: async () => (asked = true) }));
    expect(asked).toBe(false);
    expect(q.contents()).toEqual(["status.session.8"]);
  });

  test("nothing matching: says so and asks nothing", async () => {
    const r = await run(fakeQueue(three()), undefined, (d) => purgeDlq(d, { match: "nope" }, { yes: false, confirm: async () => { throw new Error("asked"); } }));
    expect(r.code).toBe(0);
    expect(r.out[0]).toStartWith("nothing to purge: none of the 3 messages");
  });
});
