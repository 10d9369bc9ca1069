import { expect, test } from "bun:test";
import { Fleet, type FleetMessage, type FleetOptions } from "./fleet.ts";
import { seededRandom } from "./lines.ts";

/** Steps a fleet every 20 ms of fake time for `ms`, creating rows as asked; every message in order. */
function run(options: Partial<FleetOptions>, ms: number): { fleet: Fleet; messages: FleetMessage[] } {
  const fleet = new Fleet({ serverIds: [1, 2], sessions: 4, linesPerSecond: 100, upstreamExact: false, sessionLifetimeMs: [3_000, 6_000], random: seededRandom(7), ...options });
  let nextId = 100;
  const messages = fleet.start(0);
  for (let t = 20; t <= ms; t += 20) {
    const step = fleet.step(t);
    messages.push(...step.messages);
    for (const r of step.create) fleet.sessionCreated(r.slot, ++nextId, t);
  }
  messages.push(...fleet.stop(ms));
  return { fleet, messages };
}

const parsed = (ms: FleetMessage[], kind: FleetMessage["kind"]) => ms.filter((m) => m.kind === kind).map((m) => JSON.parse(m.body) as Record<string, unknown>);

test("hosts say online, heartbeat at once and every 5 s, and say offline at the end", () => {
  const { messages } = run({}, 60_000);
  const status = parsed(messages, "host_status");
  expect(status).toEqual([{ server_id: 1, status: "online" }, { server_id: 2, status: "online" }, { server_id: 1, status: "offline" }, { server_id: 2, status: "offline" }]);
  // At 0, then every 5 s up to 60 s: 13 for each host.
  expect(parsed(messages, "heartbeat").filter((h) => h.server_id === 1).length).toBe(13);
});

test("each session moves only along the host's paths, and its lines come while it exists", () => {
  const { fleet, messages } = run({}, 120_000);
  const paths = new Map<number, string[]>();
  for (const s of parsed(messages, "session_status")) paths.set(s.session_id as number, [...(paths.get(s.session_id as number) ?? []), `${s.status}${s.sgc_id === 0 ? "/0" : ""}${s.exit_code === undefined ? "" : `:${s.exit_code}`}`]);
  const legal = /^starting(,starting\/0)*(,crashed|,running(,stopping,stopped|,stopped\/0|,crashed:(1|137|139))?)?$/;
  for (const path of paths.values()) expect(path.join(",")).toMatch(legal);
  const c = fleet.counts;
  expect(c.created).toBe(paths.size);
  expect(c.stopped + c.crashed + c.killed + c.failedToStart).toBeGreaterThan(10);
  expect(c.stopped).toBeGreaterThan(0);
  expect(c.crashed).toBeGreaterThan(0);
  // No line for a session before its starting.
  const seen = new Set<string>();
  for (const m of messages) {
    const id = m.routingKey.split(".").at(-1)!;
    if (m.kind === "session_status") seen.add(id);
    if (m.kind === "log_line") expect(seen.has(id)).toBe(true);
  }
});

test("lines come at the asked rate while sessions run, with stderr, host lines and colours", () => {
  const { messages } = run({ linesPerSecond: 200 }, 60_000);
  const lines = parsed(messages, "log_line");
  // 200/s for 60 s, less the first second or two before a session runs and gaps when none does.
  expect(lines.length).toBeGreaterThan(200 * 45);
  expect(lines.length).toBeLessThan(200 * 62);
  expect(lines.some((l) => l.source === "stderr")).toBe(true);
  expect(lines.some((l) => l.source === "host")).toBe(true);
  expect(lines.filter((l) => String(l.message).includes("\x1b[")).length).toBeGreaterThan(lines.length / 2);
});

test("upstream-exact sends stdout only, in batches of at most 50 stamped with the flush time", () => {
  const { messages } = run({ upstreamExact: true, linesPerSecond: 500 }, 30_000);
  const lines = parsed(messages, "log_line");
  expect(lines.every((l) => l.source === "stdout")).toBe(true);
  const batches = new Map<string, number>();
  for (const l of lines) batches.set(`${l.session_id}@${l.timestamp}`, (batches.get(`${l.session_id}@${l.timestamp}`) ?? 0) + 1);
  expect(Math.max(...batches.values())).toBeLessThanOrEqual(50 + 3); // a final flush may carry the stop lines too
  expect([...batches.values()].filter((n) => n === 50).length).toBeGreaterThan(10);
});

test("a session whose row could not be created is asked for again later", () => {
  const fleet = new Fleet({ serverIds: [1], sessions: 1, linesPerSecond: 10, upstreamExact: false, random: seededRandom(1) });
  fleet.start(0);
  let asked = 0;
  for (let t = 20; t <= 10_000; t += 20) {
    for (const r of fleet.step(t).create) {
      asked++;
      fleet.sessionNotCreated(r.slot, t);
    }
  }
  expect(asked).toBeGreaterThanOrEqual(2);
  expect(fleet.counts.created).toBe(0);
});
