/**
 * The log hub: per session, a ring of the last `maxLines` lines with a
 * sequence number (1, 2, 3, … per session), and the streams reading them.
 * Pure: no I/O and no timers; time comes from the injected clock and the
 * owner calls `sweep()` now and then.
 *
 * Every stream of a session shares the stored lines: it gets the backlog
 * after its sequence number, then a bounded queue of references to live
 * lines (see subscriber.ts). A stream that falls too far behind ends with
 * `LogStreamLagged`; the client reconnects with its last sequence number.
 *
 * Memory is bounded whatever the traffic: each ring holds at most
 * `maxLines`, all rings together at most `maxBytes` (estimated; past that
 * the oldest lines of the least recently written sessions go first), and
 * each stream's queue at most `maxPendingBytes`.
 */
import type { Clock } from "../util/time.ts";
import { systemClock } from "../util/time.ts";
import { lineBytes, type LogLine } from "./line.ts";
import { SessionRing } from "./ring.ts";
import { Subscriber, type LogSubscription } from "./subscriber.ts";

export interface LogHubOptions {
  /** Lines kept per session (LOG_BUFFER_MAX_MESSAGES). */
  maxLines: number;
  /** A session without streams is forgotten this long after its last line (LOG_BUFFER_TTL). */
  ttlMs: number;
  /** Estimated bytes all buffers together may hold (LOG_BUFFER_MAX_BYTES). */
  maxBytes: number;
  /** Estimated bytes of live lines one stream may have waiting (LOG_STREAM_MAX_PENDING_BYTES). */
  maxPendingBytes: number;
  clock?: Clock;
}

export interface LogHubStats {
  sessions: number;
  lines: number;
  bytes: number;
  subscribers: number;
}

export interface LogHub {
  /** Stores a line, gives it the session's next sequence number and wakes its streams. */
  append(line: Omit<LogLine, "seq">): LogLine;
  /**
   * Lines of `sessionId` after `afterSeq` (0 = the whole buffer), then live
   * lines until closed. An `afterSeq` beyond the newest line comes from an
   * earlier life of the buffer (a restart, or a TTL expiry): the stream then
   * starts from the oldest buffered line, so the client gets duplicates
   * rather than a gap.
   */
  subscribe(sessionId: number, afterSeq: number, signal?: AbortSignal): LogSubscription;
  /** Forgets sessions past their TTL that nobody is watching; returns how many. */
  sweep(): number;
  stats(): LogHubStats;
  /** Streams open on one session, or on all when omitted. */
  subscriberCount(sessionId?: number): number;
}

// Estimated heap cost of one session (map entry, object, set, ring array);
// it only needs to err on the safe side.
const SESSION_OVERHEAD_BYTES = 512;

interface SessionBuffer {
  readonly ring: SessionRing;
  lastActivityAt: number;
  readonly subscribers: Set<Subscriber>;
}

export function createLogHub(options: LogHubOptions): LogHub {
  const { maxLines, ttlMs, maxBytes, maxPendingBytes } = options;
  const clock = options.clock ?? systemClock;
  // Insertion order = least recently written first (touch() moves to the end),
  // so sweeping and memory eviction both start at the front.
  const sessions = new Map<number, SessionBuffer>();
  let lastTouched: SessionBuffer | undefined;
  let bytes = 0;
  let lines = 0;
  let subscribers = 0;

  function forget(s: SessionBuffer): void {
    bytes -= s.ring.bytes + SESSION_OVERHEAD_BYTES;
    lines -= s.ring.size;
    sessions.delete(s.ring.sessionId);
    if (lastTouched === s) lastTouched = undefined;
  }

  function expired(s: SessionBuffer, now: number): boolean {
    return s.subscribers.size === 0 && now - s.lastActivityAt >= ttlMs;
  }

  /** The live buffer of a session, created empty (sequence restarting at 1) when there is none. */
  function buffer(id: number, now: number): SessionBuffer {
    let s = sessions.get(id);
    if (s && expired(s, now)) {
      forget(s);
      s = undefined;
    }
    if (!s) {
      s = { ring: new SessionRing(id, maxLines), lastActivityAt: now, subscribers: new Set() };
      sessions.set(id, s);
      bytes += SESSION_OVERHEAD_BYTES;
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

  function dropOldest(s: SessionBuffer): void {
    bytes -= s.ring.dropOldest();
    lines--;
  }

  function enforceMemoryBound(keep: SessionBuffer): void {
    for (const s of sessions.values()) {
      if (bytes <= maxBytes) return;
      while (bytes > maxBytes && s.ring.size > 0) dropOldest(s);
      if (bytes > maxBytes && s !== keep && s.subscribers.size === 0) forget(s);
    }
  }

  function subscribe(s: SessionBuffer, afterSeq: number, signal?: AbortSignal): LogSubscription {
    const sub = new Subscriber(s.ring.after(afterSeq), maxPendingBytes, (gone) => {
      if (s.subscribers.delete(gone)) subscribers--;
      // The buffer stays for its TTL counted from now, for a reconnect.
      s.lastActivityAt = Math.max(s.lastActivityAt, clock.now());
    });
    s.subscribers.add(sub);
    subscribers++;
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
      if (bytes > maxBytes) enforceMemoryBound(s);
      for (const sub of s.subscribers) sub.push(line);
      return line;
    },
    subscribe(sessionId, afterSeq, signal) {
      return subscribe(buffer(sessionId, clock.now()), afterSeq, signal);
    },

    sweep() {
      const now = clock.now();
      let removed = 0;
      for (const s of sessions.values()) {
        if (expired(s, now)) {
          forget(s);
          removed++;
        }
      }
      return removed;
    },

    stats: () => ({ sessions: sessions.size, lines, bytes, subscribers }),

    subscriberCount: (sessionId) => (sessionId === undefined ? subscribers : (sessions.get(sessionId)?.subscribers.size ?? 0)),
  };
}
