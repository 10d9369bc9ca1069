/**
 * `bun bench/profile-shares.ts <file.cpuprofile>` — where a profile of the
 * event service spends its time, by part of the pipeline: each sample goes
 * to the first part named on its stack, walking from the running function
 * out (a socket write under an ack is the ack's, under a query the SQL's).
 * Shares are of samples, not of the profile's time deltas: on a busy
 * machine a delta also holds the time the process waited for a core.
 * Not a test: it prints (docs/performance.md).
 */
import { readFileSync } from "node:fs";

interface Node {
  id: number;
  callFrame: { functionName: string; url: string };
  children?: number[];
}

// Most specific first: the first rule a frame matches names its part.
const PARTS: [string, RegExp][] = [
  ["logging", /src\/log\.ts|process\.stderr|process\.stdout/],
  ["metrics", /src\/metrics\.ts|event-pipeline\/counters\.ts/],
  ["acks", /amqp\/acker\.ts/],
  ["publish events (confirms, outbox deletes)", /amqp\/publisher\.ts|event-pipeline\/announcer\.ts|db\/outbox\.ts|deferred-events\.ts/],
  ["SQL (statements, driver, socket)", /node_modules\/postgres\/|src\/db\//],
  ["decode + validation (JSON, valibot)", /node_modules\/valibot|events\/messages\.ts/],
  ["keyed queue, in-flight", /util\/keyed-queue\.ts|event-pipeline\/in-flight\.ts/],
  ["apply (decisions), settle, work", /events\/apply\.ts|event-pipeline\/settle\.ts|event-pipeline\/work\.ts/],
  ["broker receive (frames, deliveries)", /@cloudamqp\/amqp-client/],
];

export function shares(profile: { nodes: Node[]; samples: number[] }): [string, number][] {
  const parent = new Map<number, number>();
  const byId = new Map<number, Node>();
  for (const n of profile.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const partOf = new Map<number, string>();
  const classify = (id: number): string => {
    const known = partOf.get(id);
    if (known) return known;
    const f = byId.get(id)!.callFrame;
    const where = `${f.url} ${f.functionName}`;
    const rule = PARTS.find(([, re]) => re.test(where));
    const p = parent.get(id);
    const part = rule ? rule[0] : p === undefined ? (f.functionName === "(idle)" ? "idle" : "other (event loop, timers, GC)") : classify(p);
    partOf.set(id, part);
    return part;
  };
  const counts = new Map<string, number>();
  for (const s of profile.samples) {
    const part = classify(s);
    counts.set(part, (counts.get(part) ?? 0) + 1);
  }
  const busy = [...counts].filter(([k]) => k !== "idle").reduce((a, [, n]) => a + n, 0);
  return [...counts].filter(([k]) => k !== "idle").map(([k, n]) => [k, n / busy] as [string, number]).sort((a, b) => b[1] - a[1]);
}

if (import.meta.main) {
  const profile = JSON.parse(readFileSync(process.argv[2]!, "utf8"));
  const perMessageUs = Number(process.argv[3] ?? NaN);
  for (const [part, share] of shares(profile)) {
    const us = Number.isNaN(perMessageUs) ? "" : `  ~${(share * perMessageUs).toFixed(1)} µs a message`;
    console.log(`${(share * 100).toFixed(1).padStart(5)}%  ${part}${us}`);
  }
  console.log(`(${profile.samples.length} samples)`);
}
