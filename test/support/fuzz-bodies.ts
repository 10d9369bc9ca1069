/**
 * Random and mutated event bodies for the fuzz tests: valid messages as
 * hosts send them, then the same mutated (fields dropped, retyped, huge
 * numbers, deep nesting, `__proto__`, truncation, random bytes). Seeded, so
 * a failure can be replayed.
 */

import { seededRandom } from "../../src/tools/fleet/lines.ts";

/** Mulberry32: a small seeded PRNG, enough for test data (the simulated fleet's). */
export const prng: (seed: number) => () => number = seededRandom;

export interface FuzzCase {
  routingKey: string;
  body: Uint8Array;
  /** Built valid from known ids and left unmutated: must be applied, never dead-lettered. */
  valid: boolean;
}

const enc = new TextEncoder();
const SESSION_STATES = ["pending", "starting", "running", "stopping", "stopped", "crashed", "lost"];

export function fuzzCases(count: number, seed: number, ids: { servers: number[]; sessions: number[] }): FuzzCase[] {
  const rnd = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const out: FuzzCase[] = [];
  for (let i = 0; i < count; i++) {
    const kind = pick(["host", "heartbeat", "session", "backup"] as const);
    const serverId = pick(ids.servers);
    const sessionId = pick(ids.sessions);
    let key: string;
    let msg: Record<string, unknown>;
    switch (kind) {
      case "host":
        key = `status.host.${serverId}`;
        msg = { server_id: serverId, status: pick(["online", "offline"]) };
        break;
      case "heartbeat":
        key = `health.host.${serverId}`;
        msg = { server_id: serverId, session_stats: { total: 1, pending: 0, starting: 0, running: 1, stopping: 0, stopped: 0, crashed: 0 } };
        break;
      case "session":
        key = `status.session.${sessionId}`;
        msg = { session_id: sessionId, sgc_id: pick([0, 1]), status: pick(SESSION_STATES) };
        break;
      case "backup":
        // No backups table in a standalone database: always dead-lettered, with that reason.
        key = `status.backup.${i + 1}`;
        msg = { backup_id: i + 1, status: "completed", s3_url: "s3://backups/1/2/3.tar.gz" };
        break;
    }
    // Two cases in five stay valid (a valid session move may still be stale or early: it is never "bad").
    if (kind !== "backup" && rnd() < 0.4) {
      out.push({ routingKey: key, body: enc.encode(JSON.stringify(msg)), valid: true });
      continue;
    }
    out.push({ routingKey: rnd() < 0.05 ? pick(["status.planet.1", "health", "status.host.", ""]) : key, body: mutate(msg, rnd, pick), valid: false });
  }
  return out;
}

function mutate(msg: Record<string, unknown>, rnd: () => number, pick: <T>(xs: readonly T[]) => T): Uint8Array {
  const fields = Object.keys(msg);
  const m: Record<string, unknown> = { ...msg };
  switch (Math.floor(rnd() * 12)) {
    case 0: delete m[pick(fields)]; break;
    case 1: m[pick(fields)] = pick(["", "7", null, true, [], {}, -1, 1.5, "online"]); break;
    case 2: return enc.encode(JSON.stringify(m).replace(/\d+/, "1e400")); // Infinity
    case 3: m[pick(fields)] = 2 ** 63; break;
    case 4: return enc.encode('{"__proto__":{"polluted":true},' + JSON.stringify(m).slice(1));
    case 5: { // deep nesting, deeper than any parser's comfort
      const depth = 1 + Math.floor(rnd() * 5000);
      return enc.encode("[".repeat(depth) + "]".repeat(depth));
    }
    case 6: return enc.encode(JSON.stringify(m).slice(0, Math.floor(rnd() * 20))); // truncated
    case 7: return Uint8Array.from({ length: Math.floor(rnd() * 64) }, () => Math.floor(rnd() * 256)); // random bytes
    case 8: return enc.encode(JSON.stringify(pick([null, 42, "text", [m], true])));
    case 9: m.extra = "x".repeat(Math.floor(rnd() * 2000)); m.status = pick(["ONLINE", "paused", 3]); break;
    case 10: m["constructor"] = { prototype: { bad: 1 } } as unknown; m[pick(fields)] = "__proto__"; break;
    default: return enc.encode(JSON.stringify(m) + pick(["}", ",", "\u0000", " trailing"]));
  }
  return enc.encode(JSON.stringify(m));
}
