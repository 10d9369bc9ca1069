/**
 * Runs a Fleet in real time: steps it every TICK_MS, publishes what it says
 * through a FleetPublisher, creates the session rows it asks for (without
 * holding up the others), and at the end lets the hosts go offline. The
 * one loop behind `simulate`, `demo` and any
 * benchmark that wants a live fleet. Close the channel's connection
 * afterwards (cleanly) to be sure the broker has every message counted.
 */
import { sleep } from "../../util/time.ts";
import type { Fleet, SessionCounts, SessionRequest } from "./fleet.ts";
import type { FleetPublisher, SentCounts } from "./publish.ts";

// 20 ms: 50 steps a second spread lines evenly enough for a viewer and a
// consumer, while a step costs well under a millisecond.
const TICK_MS = 20;

export interface FleetReport {
  sent: SentCounts;
  sessions: SessionCounts;
  /** Sessions by where they are now (running, starting, …). */
  open: Record<string, number>;
  elapsedMs: number;
  /** Log lines sent per second of the run. */
  linesPerSecond: number;
}

export interface DriveOptions {
  /** Ends the run (Ctrl-C, the demo's shutdown). */
  signal: AbortSignal;
  /** Ends the run after this long; unset = until `signal`. */
  durationMs?: number;
  /** The row for a session (the API's part); its session_id. */
  createSession(request: SessionRequest): Promise<number>;
  /** A row that could not be created (the slot tries again later). */
  onCreateFailed?(request: SessionRequest, error: unknown): void;
  /** Called about once a second with the report so far. */
  onProgress?(report: FleetReport): void;
  now?: () => number;
}

export async function driveFleet(fleet: Fleet, publisher: FleetPublisher, options: DriveOptions): Promise<FleetReport> {
  const now = options.now ?? Date.now;
  const started = now();
  const end = options.durationMs === undefined ? Infinity : started + options.durationMs;
  const creating = new Set<Promise<void>>();
  const report = (): FleetReport => {
    const elapsedMs = Math.max(1, now() - started);
    const { idle: _idle, ...open } = fleet.phases();
    return { sent: { ...publisher.sent }, sessions: { ...fleet.counts }, open, elapsedMs, linesPerSecond: (publisher.sent.log_line * 1000) / elapsedMs };
  };
  for (const m of fleet.start(started)) await publisher.publish(m);
  let lastProgress = started;
  while (!options.signal.aborted && now() < end) {
    const step = fleet.step(now());
    for (const m of step.messages) await publisher.publish(m);
    for (const request of step.create) {
      const p = options.createSession(request).then(
        (id) => fleet.sessionCreated(request.slot, id, now()),
        (err: unknown) => {
          fleet.sessionNotCreated(request.slot, now());
          options.onCreateFailed?.(request, err);
        },
      );
      creating.add(p);
      void p.finally(() => creating.delete(p));
    }
    if (options.onProgress && now() - lastProgress >= 1_000) {
      lastProgress = now();
      options.onProgress(report());
    }
    await sleep(Math.max(0, Math.min(TICK_MS, end - now())), options.signal).catch(() => {});
  }
  await Promise.all(creating);
  for (const m of fleet.stop(now())) await publisher.publish(m);
  await publisher.flush();
  return report();
}
