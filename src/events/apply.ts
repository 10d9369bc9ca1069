/**
 * What each message does (CONTRACT §4): run its one statement, then decide
 * from what the statement found. The decisions are pure functions; the
 * statements sit behind a narrow EventStore so the decisions can be tested
 * without a database.
 */
import type { EventMessage, SessionStatus } from "./messages.ts";
import { classifyMove, legalPredecessors, type SessionState } from "./session-machine.ts";
import type { HostChange } from "../db/hosts.ts";
import type { SessionChange, SessionMove } from "../db/sessions.ts";
import type { OutboxEvent } from "../db/outbox.ts";

export interface EventStore {
  setHostStatus(serverId: number, status: "online" | "offline"): Promise<HostChange>;
  recordHeartbeat(serverId: number): Promise<HostChange>;
  moveSession(move: SessionMove): Promise<SessionChange>;
}

export type Outcome =
  /** The change is committed; `events` are in the outbox, to be published. */
  | { kind: "applied"; events: OutboxEvent[]; detail: string }
  /** Accepted, nothing to change (same state, heartbeat of an online host). */
  | { kind: "unchanged"; events: OutboxEvent[]; detail: string }
  /** A redelivery of something already passed: acked and counted, not dead-lettered. */
  | { kind: "stale"; events: OutboxEvent[]; detail: string }
  /** Can never succeed: dead-letter with this reason. */
  | { kind: "rejected"; events: OutboxEvent[]; detail: string };

export async function applyEvent(store: EventStore, event: EventMessage): Promise<Outcome> {
  switch (event.kind) {
    case "host_status": {
      const { server_id, status } = event.message;
      return hostOutcome(server_id, await store.setHostStatus(server_id, status), `host ${status}`);
    }
    case "heartbeat": {
      const { server_id } = event.message;
      const change = await store.recordHeartbeat(server_id);
      return hostOutcome(server_id, change, change.events.length > 0 ? "host back online" : "heartbeat");
    }
    case "session_status": {
      const m = event.message;
      const change = await store.moveSession(sessionMove(m));
      return sessionOutcome(m, change);
    }
  }
}

export function sessionMove(m: SessionStatus): SessionMove {
  return { sessionId: m.session_id, to: m.status, exitCode: m.exit_code ?? null, from: legalPredecessors(m.status) };
}

export function hostOutcome(serverId: number, change: HostChange, detail: string): Outcome {
  if (!change.found) return { kind: "rejected", events: [], detail: `server ${serverId} does not exist` };
  const changed = change.events.length > 0;
  return { kind: changed ? "applied" : "unchanged", events: change.events, detail };
}

export function sessionOutcome(m: SessionStatus, change: SessionChange): Outcome {
  const to = m.status;
  if (change.previousStatus === null) return { kind: "rejected", events: [], detail: `session ${m.session_id} does not exist` };
  const from = change.previousStatus as SessionState;
  if (change.moved) {
    const superseded = change.superseded.length > 0 ? `; stopped superseded sessions ${change.superseded.join(", ")}` : "";
    return { kind: "applied", events: change.events, detail: `session ${from} -> ${to}${superseded}` };
  }
  switch (classifyMove(from, to)) {
    case "same":
      return { kind: "unchanged", events: [], detail: `session already ${to}` };
    case "stale":
      return { kind: "stale", events: [], detail: `stale duplicate: session is ${from}, message says ${to}` };
    case "skip":
      return { kind: "rejected", events: [], detail: `illegal transition ${from} -> ${to} skips the state machine` };
    case "advance":
      // Cannot happen: the statement locks the row it checks. If it ever
      // does, an exception makes the consumer retry rather than guess.
      throw new Error(`session ${m.session_id} was ${from} but ${to} was not applied`);
  }
}
