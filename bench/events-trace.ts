/**
 * For bench/events.ts, with BENCH_TRACE=1: where the slow 1% of the latency
 * phase spend their time. The service child records, per message, when it
 * was delivered and when it was settled (committed, before the ack), plus
 * each group statement's and each confirmed announce's start and length,
 * and event-loop stalls; the parent matches delivery tag k to the k-th
 * message published (one publisher, one queue: delivered in publish order)
 * and prints the split. Not a test, not shipped.
 */
import { AMQPChannel } from "@cloudamqp/amqp-client";
import { pct } from "./archive-load.ts";

const wall = () => performance.timeOrigin + performance.now();
// A tick of a 1 ms interval that comes this late is a stall worth listing.
const STALL_MS = 5;

export interface Trace {
  delivered: number[];
  settled: number[];
  /** When its work began: after the entity's earlier messages were done (first attempt). */
  started: number[];
  kind: string[];
  statements: [start: number, ms: number, rows: number, name: string][];
  announces: [start: number, ms: number][];
  stalls: [start: number, ms: number][];
  /** Per writer: from write() to its group's statement start (waiting for the turn to end or a statement slot). */
  waits: Record<string, number[]>;
}

/** Child: patches the service's classes; `take()` returns what was recorded since the last call. */
export async function installTrace(): Promise<() => Trace> {
  const { GroupWriter } = await import("../src/db/groups.ts");
  const { Settler } = await import("../src/event-pipeline/settle.ts");
  const { Announcer } = await import("../src/event-pipeline/announcer.ts");
  const { EventWork } = await import("../src/event-pipeline/work.ts");
  const wp = EventWork.prototype as unknown as Record<string, (...a: unknown[]) => unknown>;
  const work = wp.work!;
  wp.work = function (this: unknown, ...a: unknown[]) {
    t.started[(a[0] as { deliveryTag: number }).deliveryTag - 1 - base] ??= wall();
    return work.apply(this, a);
  };
  let t: Trace = { delivered: [], settled: [], started: [], kind: [], statements: [], announces: [], stalls: [], waits: {} };
  // Delivery tags run on across rounds: each round's first is index 0.
  let base = 0;
  let maxTag = 0;
  const ch = AMQPChannel.prototype as unknown as Record<string, (...a: unknown[]) => unknown>;
  const consume = ch.basicConsume!;
  ch.basicConsume = function (this: unknown, queue: unknown, opts: unknown, cb: unknown) {
    if (queue !== "processor-events") return consume.call(this, queue, opts, cb);
    return consume.call(this, queue, opts, (m: { deliveryTag: number; routingKey: string }) => {
      maxTag = Math.max(maxTag, m.deliveryTag);
      t.delivered[m.deliveryTag - 1 - base] = wall();
      t.kind[m.deliveryTag - 1 - base] = m.routingKey.split(".").slice(0, 2).join(".");
      (cb as (m: unknown) => void)(m);
    });
  };
  const sp = Settler.prototype as unknown as Record<string, (...a: unknown[]) => unknown>;
  const settle = sp.settle!;
  sp.settle = function (this: unknown, ...a: unknown[]) {
    t.settled[(a[0] as { deliveryTag: number }).deliveryTag - 1 - base] = wall();
    return settle.apply(this, a);
  };
  const ap = Announcer.prototype as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
  const publish = ap.publish!;
  ap.publish = async function (this: unknown, ...a: unknown[]) {
    const s = wall();
    try {
      return await publish.apply(this, a);
    } finally {
      t.announces.push([s, wall() - s]);
    }
  };
  const gp = GroupWriter.prototype as unknown as Record<string, (...a: unknown[]) => unknown>;
  const flush = gp.flush!;
  const write = gp.write!;
  gp.write = function (this: { pending?: number[] }, ...a: unknown[]) {
    (this.pending ??= []).push(wall());
    return write.apply(this, a);
  };
  gp.flush = function (this: { pending?: number[]; statement: { run(i: unknown[]): Promise<unknown>; traced?: string; wrapped?: boolean } }) {
    const st = this.statement;
    const now = wall();
    const name0 = (st.traced ??= /=> (\w+)/.exec(String(st.run))?.[1] ?? "?");
    for (const w of this.pending ?? []) (t.waits[name0] ??= []).push(now - w);
    this.pending = [];
    if (!st.wrapped) {
      st.wrapped = true;
      const run = st.run.bind(st);
      const name = name0;
      st.run = async (inputs: unknown[]) => {
        const s = wall();
        try {
          return await run(inputs);
        } finally {
          t.statements.push([s, wall() - s, inputs.length, name]);
        }
      };
    }
    return flush.call(this);
  };
  let last = wall();
  setInterval(() => {
    const now = wall();
    if (now - last > STALL_MS) t.stalls.push([last, now - last]);
    last = now;
  }, 1).unref();
  return () => {
    const out = t;
    base = maxTag;
    t = { delivered: [], settled: [], started: [], kind: [], statements: [], announces: [], stalls: [], waits: {} };
    return out;
  };
}

const f = (x: number) => x.toFixed(1);
const split = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return `p50 ${f(pct(s, 0.5))} p99 ${f(pct(s, 0.99))} max ${f(s.at(-1) ?? NaN)}`;
};

/** Parent: prints where the slowest 1% spent their time. */
export function reportTrace(t: Trace, sentAt: Float64Array): void {
  const t0 = sentAt[0]!;
  const n = Math.min(sentAt.length, t.delivered.length);
  const rows = Array.from({ length: n }, (_, k) => ({
    k, kind: t.kind[k] ?? "?", sent: sentAt[k]! - t0,
    broker: t.delivered[k]! - sentAt[k]!, queued: t.started[k]! - t.delivered[k]!, own: t.settled[k]! - t.started[k]!, service: t.settled[k]! - t.delivered[k]!, total: t.settled[k]! - sentAt[k]!,
  }));
  console.log(`    trace: broker (publish → delivered) ${split(rows.map((r) => r.broker))}; service (delivered → settled) ${split(rows.map((r) => r.service))}; total ${split(rows.map((r) => r.total))}`);
  for (const kind of new Set(rows.map((r) => r.kind))) {
    const of = rows.filter((r) => r.kind === kind);
    console.log(`      ${kind}: total ${split(of.map((r) => r.total))}; behind its entity ${split(of.map((r) => r.queued))}; own work ${split(of.map((r) => r.own))}`);
  }
  const late = rows.filter((r) => r.sent >= 1000);
  console.log(`      sent after the first second only: total ${split(late.map((r) => r.total))}; session transitions ${split(late.filter((r) => r.kind === "status.session").map((r) => r.total))}; heartbeats ${split(late.filter((r) => r.kind === "health.host").map((r) => r.total))}`);
  const slow = [...rows].sort((a, b) => b.total - a.total).slice(0, Math.ceil(n / 100));
  const byKind = new Map<string, number>();
  for (const r of slow) byKind.set(r.kind, (byKind.get(r.kind) ?? 0) + 1);
  console.log(`      slowest 1% (${slow.length}): by kind ${JSON.stringify(Object.fromEntries(byKind))}; broker mean ${f(slow.reduce((a, r) => a + r.broker, 0) / slow.length)} ms, behind its entity mean ${f(slow.reduce((a, r) => a + r.queued, 0) / slow.length)} ms, own work mean ${f(slow.reduce((a, r) => a + r.own, 0) / slow.length)} ms`);
  const buckets = new Map<number, number>();
  for (const r of slow) buckets.set(Math.floor(r.sent / 250) * 250, (buckets.get(Math.floor(r.sent / 250) * 250) ?? 0) + 1);
  console.log(`      slowest 1% by send time (ms bucket: count): ${[...buckets].sort((a, b) => a[0] - b[0]).map(([b, c]) => `${b}:${c}`).join(" ")}`);
  for (const r of slow.slice(0, 15)) console.log(`        #${r.k} ${r.kind} at ${f(r.sent)} ms: broker ${f(r.broker)}, behind ${f(r.queued)}, own ${f(r.own)}`);
  console.log(`      announces (confirm wait): ${split(t.announces.map((a) => a[1]))}`);
  const stmts = new Map<string, number[]>();
  for (const s of t.statements) stmts.set(s[3], [...(stmts.get(s[3]) ?? []), s[1]]);
  for (const [name, ms] of stmts) console.log(`      statement ${name} (${ms.length}): ${split(ms)}`);
  for (const [name, ms] of Object.entries(t.waits)) console.log(`      wait for ${name}'s statement: ${split(ms)}`);
  for (const s of t.statements.filter((s) => s[1] > 10)) console.log(`        slow statement ${s[3]} at ${f(s[0] - t0)} ms: ${f(s[1])} ms, ${s[2]} rows`);
  console.log(`      event-loop stalls > 5 ms: ${t.stalls.map(([s, ms]) => `${f(s - t0)}+${f(ms)}`).join(", ") || "none"}`);
}
