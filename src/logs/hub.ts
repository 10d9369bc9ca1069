/**
 * The log hub: per session, a ring of the last `maxLines` lines with a
 * sequence number (1, 2, 3, … per session), and the streams reading them.
 * A session's numbering goes on where it stopped when its buffer expired
 * and lines come again (the hub remembers the next number of the last
 * `rememberedSessions` sessions it forgot): a client that resumes with its
 * last number after a long quiet gets the new lines, none skipped because
 * a restarted numbering had already passed its number.
 * Pure: no I/O and no timers; time comes from the injected clock and the
 * owner calls `sweep()` now and then.
 *
 * Every stream of a session shares the stored lines: it gets the backlog
 * after its sequence number, then a bounded queue of references to live
 * lines (see subscriber.ts). A stream that falls too far behind ends with
 * `LogStreamLagged`; the client reconnects with its last sequence number.
 *
 * Memory is bounded whatever the traffic or the clients:
 * - each ring holds at most `maxLines`; each stream's queue at most
 *   `maxPendingBytes` of live lines;
 * - a stream for a session with no buffer (unknown, not started, expired)
 *   creates none: it waits in a shared table, costing only itself, until a
 *   line of that session arrives (then the buffer is made and it is moved in);
 * - all rings together plus the lines only streams still hold (the ring
 *   dropped them, a stream has yet to send them: "pinned", see pinned.ts)
 *   stay under `maxBytes` (estimated). Pinned lines may take at most half of
 *   it: past that the streams furthest behind end (LogStreamLagged, so
 *   RESOURCE_EXHAUSTED) until they fit. Then the least recently written
 *   sessions lose their oldest lines first.
 */
import type { Clock } from "../util/time.ts";
import { systemClock } from "../util/time.ts";
import { lineBytes, type LogLine } from "./line.ts";
import { PinnedLines } from "./pinned.ts";
import { SessionRing } from "./ring.ts";
import { Subscriber, type LogSubscription } from "./subscriber.ts";

export interface LogHubOptions {
  /** Lines kept per session (LOG_BUFFER_MAX_MESSAGES). */
  maxLines: number;
  /** A session without streams is forgotten this long after its last line (LOG_BUFFER_TTL). */
  ttlMs: number;
  /** Estimated bytes all buffers and pinned lines together may hold (LOG_BUFFER_MAX_BYTES). */
  maxBytes: number;
  /** Estimated bytes of live lines one stream may have waiting (LOG_STREAM_MAX_PENDING_BYTES). */
  maxPendingBytes: number;
  /** Forgotten sessions whose next sequence number is remembered, oldest forgotten first out (default 10,000). */
  rememberedSessions?: number;
  clock?: Clock;
}

// A number pair in a Map is ~70 bytes of heap in Bun (measured: 100,000
// entries, 68 B each): 10,000 sessions are ~0.7 MB, and cover every session
// a fleet logs from for days between restarts.
const REMEMBERED_SESSIONS = 10_000;

export interface LogHubStats {
  sessions: number;
  lines: number;
  /** Estimated bytes of the buffers (lines and per-session overhead). */
  bytes: number;
  /** Estimated bytes of lines the buffers dropped that streams still have to send. */
  pinnedBytes: number;
  /** Open streams, waiting ones included. */
  subscribers: number;
  /** Streams waiting for the first line of a session that has no buffer. */
  waiting: number;
}

export interface LogHub {
  /** Stores a line, gives it the session's next sequence number and wakes its streams. */
  append(line: Omit<LogLine, "seq">): LogLine;
  /**
   * Lines of `sessionId` after `afterSeq` (0 = the whole buffer), then live
   * lines until closed. An `afterSeq` beyond the newest line comes from an
   * earlier life of the buffer (a restart, or a TTL expiry): the stream then
   * starts from the oldest buffered line, so the client gets duplicates
   * rather than a gap. A session with no buffer gets none made: the stream
   * waits for its first line.
   */
  subscribe(sessionId: number, afterSeq: number, signal?: AbortSignal): LogSubscription;
  /** Forgets sessions past their TTL that nobody is watching; returns how many. */
  sweep(): number;
  stats(): LogHubStats;
  /** Streams open on one session, or on all when omitted (waiting ones included). */
  subscriberCount(sessionId?: number): number;
  /**
   * The newest `count` buffered lines of a session, oldest first (none when
   * it has no buffer). Reads only: a crash's last lines for its event
   * (events' `log_tail`) must not keep the buffer alive.
   */
  tail(sessionId: number, count: number): LogLine[];
}

// Estimated heap cost of one session (map entry, object, set, ring array);
// it only needs to err on the safe side.
const SESSION_OVERHEAD_BYTES = 512;

interface SessionBuffer {
  readonly ring: SessionRing;
  lastActivityAt: number;
  readonly subscribers: Set<Subscriber>;
  readonly pinned: PinnedLines;
}

export function createLogHub(options: LogHubOptions): LogHub {
  const { maxLines, ttlMs, maxBytes, maxPendingBytes } = options;
  const maxPinnedBytes = Math.floor(maxBytes / 2);
  const clock = options.clock ?? systemClock;
  const rememberedSessions = options.rememberedSessions ?? REMEMBERED_SESSIONS;
  // Session id → the sequence number its next line gets, for sessions whose buffer was forgotten.
  const nextSeqOf = new Map<number, number>();
  // Insertion order = least recently written first (touch() moves to the end),
  // so sweeping and memory eviction both start at the front.
  const sessions = new Map<number, SessionBuffer>();
  // Streams of sessions with no buffer, by session id.
  const waiting = new Map<number, Set<Subscriber>>();
  // Sessions whose PinnedLines is not empty.
  const pinnedSessions = new Set<SessionBuffer>();
  let lastTouched: SessionBuffer | undefined;
  let bytes = 0;
  let pinnedBytes = 0;
  let lines = 0;
  let subscribers = 0;
  let waitingCount = 0;

  function forget(s: SessionBuffer): void {
    nextSeqOf.set(s.ring.sessionId, s.ring.next);
    if (nextSeqOf.size > rememberedSessions) nextSeqOf.delete(nextSeqOf.keys().next().value!);
    bytes -= s.ring.bytes + SESSION_OVERHEAD_BYTES;
    lines -= s.ring.size;
    unpin(s, s.pinned.clear());
    sessions.delete(s.ring.sessionId);
    if (lastTouched === s) lastTouched = undefined;
  }

  function expired(s: SessionBuffer, now: number): boolean {
    return s.subscribers.size === 0 && now - s.lastActivityAt >= ttlMs;
  }

  /** The live buffer of a session, or undefined (an expired one is forgotten here). */
  function existing(id: number, now: number): SessionBuffer | undefined {
    const s = sessions.get(id);
    if (s && expired(s, now)) {
      forget(s);
      return undefined;
    }
    return s;
  }

  /** The live buffer of a session, made (numbering on from where a forgotten one stopped, else 1) when there is none; waiting streams move in. */
  function buffer(id: number, now: number): SessionBuffer {
    let s = existing(id, now);
    if (!s) {
      const startAt = nextSeqOf.get(id) ?? 1;
      nextSeqOf.delete(id);
      s = { ring: new SessionRing(id, maxLines, startAt), lastActivityAt: now, subscribers: new Set(), pinned: new PinnedLines() };
      sessions.set(id, s);
      bytes += SESSION_OVERHEAD_BYTES;
      const w = waiting.get(id);
      if (w) {
        waiting.delete(id);
        waitingCount -= w.size;
        for (const sub of w) s.subscribers.add(sub);
      }
    }
    return s;
  }

  function touch(s: SessionBuffer, now: number): void {
    s.lastActivityAt = now;
    if (lastTouched !== s) {
      sessions.delete(s.ring.sessionId);
      sessions.set(s.ring.sessionId, s);
      lastTouched = s;
    }
  }

  function unpin(s: SessionBuffer, freed: number): void {
    pinnedBytes -= freed;
    if (s.pinned.empty) pinnedSessions.delete(s);
  }

  /** Exact again: forgets pinned lines no stream of the session holds any more. */
  function trim(s: SessionBuffer): void {
    unpin(s, s.pinned.trim(s.ring.next, s.subscribers));
  }

  function dropOldest(s: SessionBuffer): void {
    const line = s.ring.dropOldest();
    if (!line) return;
    lines--;
    const size = lineBytes(line);
    bytes -= size;
    if (s.subscribers.size === 0) return;
    if (s.pinned.due(line.seq)) trim(s);
    // A stream still has to send it: its memory stays in use, counted as pinned.
    if (s.pinned.keep(line)) {
      pinnedBytes += size;
      pinnedSessions.add(s);
    }
  }

  /** Ends the stream holding the most lines its buffer dropped; false when none does. */
  function endFurthestBehind(): boolean {
    let victim: Subscriber | undefined;
    let most = 0;
    for (const s of pinnedSessions) {
      trim(s);
      for (const sub of s.subscribers) {
        const behind = s.ring.first - sub.heldFrom(s.ring.next);
        if (behind > most) [victim, most] = [sub, behind];
      }
    }
    victim?.dropBehind(`the server's log memory is full and this stream was the furthest behind (${most} lines no longer buffered)`);
    return victim !== undefined;
  }

  function capPinned(): void {
    while (pinnedBytes > maxPinnedBytes && endFurthestBehind());
  }

  function enforceMemoryBound(keep: SessionBuffer): void {
    capPinned();
    for (const s of sessions.values()) {
      if (bytes + pinnedBytes <= maxBytes) return;
      while (bytes + pinnedBytes > maxBytes && s.ring.size > 0) {
        dropOldest(s);
        if (pinnedBytes > maxPinnedBytes) capPinned();
      }
      if (bytes + pinnedBytes > maxBytes && s !== keep && s.subscribers.size === 0) forget(s);
    }
    // Only pinned lines are left to free.
    while (bytes + pinnedBytes > maxBytes && endFurthestBehind());
  }

  function detach(gone: Subscriber): void {
    subscribers--;
    const w = waiting.get(gone.sessionId);
    if (w?.delete(gone)) {
      waitingCount--;
      if (w.size === 0) waiting.delete(gone.sessionId);
      return;
    }
    const s = sessions.get(gone.sessionId);
    if (!s?.subscribers.delete(gone)) return;
    if (!s.pinned.empty) trim(s);
    // The buffer stays for its TTL counted from now, for a reconnect.
    s.lastActivityAt = Math.max(s.lastActivityAt, clock.now());
  }

  function subscribe(sessionId: number, afterSeq: number, signal?: AbortSignal): LogSubscription {
    const s = existing(sessionId, clock.now());
    const sub = new Subscriber(sessionId, s ? s.ring.after(afterSeq) : [], maxPendingBytes, detach);
    subscribers++;
    if (s) {
      s.subscribers.add(sub);
      s.pinned.watch(sub.heldFrom(s.ring.next));
    } else {
      let w = waiting.get(sessionId);
      if (!w) waiting.set(sessionId, (w = new Set()));
      w.add(sub);
      waitingCount++;
    }
    sub.watch(signal);
    return sub;
  }

  return {
    append(input) {
      const now = clock.now();
      const s = buffer(input.sessionId, now);
      if (s.ring.size >= maxLines) dropOldest(s);
      const line = s.ring.push(input.timestamp, input.source, input.message);
      lines++;
      bytes += lineBytes(line);
      touch(s, now);
      if (bytes + pinnedBytes > maxBytes || pinnedBytes > maxPinnedBytes) enforceMemoryBound(s);
      for (const sub of s.subscribers) sub.push(line);
      return line;
    },
    subscribe,

    sweep() {
      const now = clock.now();
      let removed = 0;
      for (const s of pinnedSessions) trim(s);
      for (const s of sessions.values()) {
        if (expired(s, now)) {
          forget(s);
          removed++;
        }
      }
      return removed;
    },

    stats: () => ({ sessions: sessions.size, lines, bytes, pinnedBytes, subscribers, waiting: waitingCount }),

    tail(sessionId, count) {
      const ring = sessions.get(sessionId)?.ring;
      if (!ring || count <= 0) return [];
      // after(0) is the whole ring, which is then no more than `count` lines.
      return ring.after(Math.max(0, ring.next - 1 - count));
    },

    subscriberCount: (sessionId) =>
      sessionId === undefined ? subscribers : (sessions.get(sessionId)?.subscribers.size ?? 0) + (waiting.get(sessionId)?.size ?? 0),
  };
}
