/**
 * A simulated fleet of host managers, as a pure state machine: `step(now)`
 * says what the hosts publish at `now` and which session rows they need
 * (creating a row is the ManManV2 API's part, done by the caller, who
 * answers with `sessionCreated`). No timers, no I/O: a benchmark can step it
 * as fast as it likes, a test with a fake clock.
 *
 * Each host says `online`, heartbeats at once and every `heartbeatMs`, and
 * says `offline` at `stop`. Each of `sessions` slots runs one session after
 * another on its host (slot i on host i mod hosts, sgc_id sgcBase + i):
 * row created (pending) → `starting` (a quarter download addons first: the
 * `starting` keepalive with sgc_id 0 every 5 s) → `running` for a lifetime →
 * stopped by a user (`stopping`, `stopped`), crashed with an exit code,
 * force-killed (`stopped`, sgc_id 0), or, for one in ten, `crashed` before
 * running (a failed image pull); then, after a pause, the slot's next
 * session. Running sessions share `linesPerSecond` between them.
 *
 * `upstreamExact` sends only what a real host manager sends (UPSTREAM.md
 * §1): every line stdout, no host lines, lines batched per session and
 * flushed at 50 lines or every second with the flush time as timestamp.
 * Otherwise lines carry their own time, some go to stderr, and the host's
 * own lines (image pull, container exit) are mixed in, as the viewer shows them.
 */
import { asUpstreamSends, between, crashLines, runningLine, seededRandom, startingLines, stoppingLines, type GeneratedLine, type Random } from "./lines.ts";
import {
  heartbeatBody, heartbeatKey, hostStatusBody, hostStatusKey, logLineBody, logLineKey, sessionStatusBody, sessionStatusKey,
  type HostSessionStatus, type HostStatus,
} from "./messages.ts";

export type FleetMessageKind = "host_status" | "heartbeat" | "session_status" | "log_line";
export const FLEET_MESSAGE_KINDS: readonly FleetMessageKind[] = ["host_status", "heartbeat", "session_status", "log_line"];

export interface FleetMessage {
  kind: FleetMessageKind;
  routingKey: string;
  body: string;
}

/** A session row the fleet needs: `pending`, with this sgc_id. */
export interface SessionRequest {
  slot: number;
  sgcId: number;
  serverId: number;
}

export interface FleetOptions {
  /** server_id of each host, rows that exist (a heartbeat for a missing row is dropped). */
  serverIds: readonly number[];
  /** Sessions alive at once (slots). */
  sessions: number;
  linesPerSecond: number;
  upstreamExact: boolean;
  // Upstream's ticker (H/main.go:187-203).
  heartbeatMs?: number;
  /** How long a session runs, [min, max] ms. */
  sessionLifetimeMs?: readonly [number, number];
  /** sgc_id of slot 0. */
  sgcBase?: number;
  random?: Random;
}

export interface FleetStep {
  messages: FleetMessage[];
  create: SessionRequest[];
}

/** Sessions by how they went: created rows, and how the ended ones ended. */
export interface SessionCounts {
  created: number;
  stopped: number;
  crashed: number;
  killed: number;
  failedToStart: number;
}

type Phase = "idle" | "creating" | "pending" | "starting" | "running" | "stopping";
type Ending = "stop" | "crash" | "kill" | "fail";

interface Slot {
  index: number;
  sgcId: number;
  serverId: number;
  phase: Phase;
  sessionId: number;
  /** When the phase's next move is due. */
  at: number;
  ending: Ending;
  keepalives: number;
  nextKeepaliveAt: number;
  lineNo: number;
  buffer: GeneratedLine[];
  lastFlush: number;
}

const KEEPALIVE_MS = 5_000; // the addon keepalive ticker (H/session/manager.go:231-241)
const BATCH_LINES = 50; // the host's flush size (H/session/manager.go:594-706)
const BATCH_MS = 1_000; // and its flush period
// 20-60 s: long enough to read a session's lines in the viewer, short enough that every minute shows sessions ending.
export const DEFAULT_LIFETIME_MS: readonly [number, number] = [20_000, 60_000];
// Far above the small ids a real deployment's configs have: a session that becomes running stops the other sessions of its sgc_id.
export const DEFAULT_SGC_BASE = 900_000;

export class Fleet {
  readonly counts: SessionCounts = { created: 0, stopped: 0, crashed: 0, killed: 0, failedToStart: 0 };
  private readonly slots: Slot[];
  private readonly random: Random;
  private readonly heartbeatMs: number;
  private readonly lifetime: readonly [number, number];
  private nextHeartbeat = 0;
  private startedAt = 0;
  private linesOwed = 0;
  private roundRobin = 0;

  constructor(private readonly options: FleetOptions) {
    if (options.serverIds.length === 0) throw new Error("a fleet needs at least one host");
    this.random = options.random ?? seededRandom(1);
    this.heartbeatMs = options.heartbeatMs ?? 5_000;
    this.lifetime = options.sessionLifetimeMs ?? DEFAULT_LIFETIME_MS;
    const base = options.sgcBase ?? DEFAULT_SGC_BASE;
    const hosts = options.serverIds;
    this.slots = Array.from({ length: options.sessions }, (_, i) => ({
      index: i, sgcId: base + i, serverId: hosts[i % hosts.length]!, phase: "idle" as Phase, sessionId: 0, at: 0, ending: "stop" as Ending,
      keepalives: 0, nextKeepaliveAt: 0, lineNo: 0, buffer: [], lastFlush: 0,
    }));
  }

  /** The hosts come online; sessions start over the next 1.5 s rather than all at once. */
  start(now: number): FleetMessage[] {
    this.startedAt = now;
    this.nextHeartbeat = now + this.heartbeatMs;
    for (const s of this.slots) s.at = now + between(this.random, 0, 1_500);
    return this.options.serverIds.flatMap((id) => [this.hostStatus(id, "online"), this.heartbeat(id)]);
  }

  step(now: number): FleetStep {
    const out: FleetStep = { messages: [], create: [] };
    if (now >= this.nextHeartbeat) {
      // A stalled caller sends one heartbeat, not the ones it missed.
      this.nextHeartbeat = Math.max(this.nextHeartbeat + this.heartbeatMs, now + 1);
      for (const id of this.options.serverIds) out.messages.push(this.heartbeat(id));
    }
    for (const s of this.slots) this.advance(s, now, out);
    this.runningLines(now, out.messages);
    return out;
  }

  /** The row for `slot` exists (as pending). */
  sessionCreated(slot: number, sessionId: number, now: number): void {
    const s = this.slots[slot]!;
    this.counts.created++;
    // The API's command reaches the host a moment after the row is written.
    Object.assign(s, { phase: "pending", sessionId, at: now + between(this.random, 300, 1_200), lineNo: 0, buffer: [], lastFlush: now });
  }

  /** The row could not be created: the slot tries again in 5 s. */
  sessionNotCreated(slot: number, now: number): void {
    Object.assign(this.slots[slot]!, { phase: "idle", at: now + 5_000 });
  }

  /** The hosts shut down as a real one does: pending lines out, `offline`; sessions are left as they are. */
  stop(now: number): FleetMessage[] {
    const out: FleetMessage[] = [];
    for (const s of this.slots) this.flush(s, now, out);
    for (const id of this.options.serverIds) out.push(this.hostStatus(id, "offline"));
    return out;
  }

  /** Sessions by phase: what the hosts have (starting, running, stopping) and the rows waiting for them. */
  phases(): Record<Phase, number> {
    const r: Record<Phase, number> = { idle: 0, creating: 0, pending: 0, starting: 0, running: 0, stopping: 0 };
    for (const s of this.slots) r[s.phase]++;
    return r;
  }

  private advance(s: Slot, now: number, out: FleetStep): void {
    const m = out.messages;
    switch (s.phase) {
      case "idle":
        if (now < s.at) return;
        s.phase = "creating";
        out.create.push({ slot: s.index, sgcId: s.sgcId, serverId: s.serverId });
        return;
      case "pending": {
        if (now < s.at) return;
        s.phase = "starting";
        m.push(this.status(s, s.sgcId, "starting"));
        for (const line of startingLines(this.random, s.sgcId)) this.line(s, line, now, m);
        const r = this.random();
        s.ending = r < 0.1 ? "fail" : "stop";
        s.keepalives = s.ending !== "fail" && this.random() < 0.25 ? between(this.random, 1, 2) : 0;
        s.nextKeepaliveAt = now + KEEPALIVE_MS;
        s.at = now + (s.keepalives > 0 ? s.keepalives * KEEPALIVE_MS + 500 : between(this.random, 1_000, 3_000));
        return;
      }
      case "starting":
        if (s.keepalives > 0 && now >= s.nextKeepaliveAt) {
          s.keepalives--;
          s.nextKeepaliveAt += KEEPALIVE_MS;
          m.push(this.status(s, 0, "starting")); // the addon download's keepalive carries no sgc_id
        }
        if (now < s.at) return;
        if (s.ending === "fail") {
          this.line(s, { source: "host", message: "image pull failed 3 times: manifest unknown" }, now, m);
          this.flush(s, now, m);
          m.push(this.status(s, s.sgcId, "crashed")); // a start failure has no exit code
          return this.ended(s, now, "failedToStart");
        }
        s.phase = "running";
        m.push(this.status(s, s.sgcId, "running"));
        s.at = now + between(this.random, this.lifetime[0], this.lifetime[1]);
        {
          const r = this.random();
          s.ending = r < 0.6 ? "stop" : r < 0.9 ? "crash" : "kill";
        }
        return;
      case "running":
        if (now < s.at) return;
        if (s.ending === "crash") {
          const exitCode = [1, 137, 139][between(this.random, 0, 2)]!;
          for (const line of crashLines(this.random, exitCode)) this.line(s, line, now, m);
          this.flush(s, now, m);
          m.push(this.status(s, s.sgcId, "crashed", exitCode));
          return this.ended(s, now, "crashed");
        }
        for (const line of stoppingLines()) this.line(s, line, now, m);
        this.flush(s, now, m);
        if (s.ending === "kill") {
          m.push(this.status(s, 0, "stopped")); // a kill: no stopping, sgc_id 0
          return this.ended(s, now, "killed");
        }
        s.phase = "stopping";
        m.push(this.status(s, s.sgcId, "stopping"));
        s.at = now + between(this.random, 500, 2_000);
        return;
      case "stopping":
        if (now < s.at) return;
        m.push(this.status(s, s.sgcId, "stopped")); // no exit code, although the host read one
        return this.ended(s, now, "stopped");
      default:
        return; // creating: waiting for the row
    }
  }

  private ended(s: Slot, now: number, how: Exclude<keyof SessionCounts, "created">): void {
    this.counts[how]++;
    s.phase = "idle";
    s.at = now + between(this.random, 1_000, 3_000);
  }

  /** `linesPerSecond` since start, shared round-robin by the running sessions; none owed while none runs. */
  private runningLines(now: number, out: FleetMessage[]): void {
    const running = this.slots.filter((s) => s.phase === "running");
    const due = Math.floor((this.options.linesPerSecond * (now - this.startedAt)) / 1000);
    // At most a second's worth at once: a caller that stalled does not make up for it in one burst.
    let owed = Math.min(due - this.linesOwed, this.options.linesPerSecond);
    this.linesOwed = due;
    if (running.length === 0) owed = 0;
    for (let i = 0; i < owed; i++) {
      const s = running[this.roundRobin++ % running.length]!;
      this.line(s, runningLine(this.random, ++s.lineNo), now, out);
    }
    // The host's per-session ticker: each second it sends what the buffer holds (maybe nothing).
    for (const s of this.slots) if (now - s.lastFlush >= BATCH_MS) this.flush(s, now, out);
  }

  private line(s: Slot, line: GeneratedLine, now: number, out: FleetMessage[]): void {
    if (!this.options.upstreamExact) {
      out.push({ kind: "log_line", routingKey: logLineKey(s.sessionId), body: logLineBody(s.sessionId, now, line.source, line.message) });
      return;
    }
    const sent = asUpstreamSends(line);
    if (sent === undefined) return;
    s.buffer.push(sent);
    if (s.buffer.length >= BATCH_LINES) this.flush(s, now, out);
  }

  /** The host's batch goes out, every line stamped with the flush time. */
  private flush(s: Slot, now: number, out: FleetMessage[]): void {
    for (const line of s.buffer) out.push({ kind: "log_line", routingKey: logLineKey(s.sessionId), body: logLineBody(s.sessionId, now, line.source, line.message) });
    s.buffer = [];
    s.lastFlush = now;
  }

  private status(s: Slot, sgcId: number, status: HostSessionStatus, exitCode?: number): FleetMessage {
    return { kind: "session_status", routingKey: sessionStatusKey(s.sessionId), body: sessionStatusBody(s.sessionId, sgcId, status, exitCode) };
  }

  private hostStatus(serverId: number, status: HostStatus): FleetMessage {
    return { kind: "host_status", routingKey: hostStatusKey(serverId), body: hostStatusBody(serverId, status) };
  }

  /** The host's in-memory map: the sessions it has started and not yet seen end. */
  private heartbeat(serverId: number): FleetMessage {
    const mine = this.slots.filter((s) => s.serverId === serverId);
    const n = (p: Phase) => mine.filter((s) => s.phase === p).length;
    const stats = { pending: 0, starting: n("starting"), running: n("running"), stopping: n("stopping"), stopped: 0, crashed: 0 };
    return { kind: "heartbeat", routingKey: heartbeatKey(serverId), body: heartbeatBody(serverId, { total: stats.starting + stats.running + stats.stopping, ...stats }) };
  }
}
