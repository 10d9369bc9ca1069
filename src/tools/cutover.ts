/**
 * `manman-processor cutover`: removes what the deployed log-processor leaves
 * on the broker (CONTRACT §1, "upstream leftovers") once it is gone. Nothing
 * reads those queues after the swap, but the broker keeps filling them: the
 * lifecycle queue takes every `manman.session.running|stopped|crashed` this
 * processor publishes, without bound, and each `logs.session.<id>` queue takes
 * that session's log lines (up to 500, for 180 s).
 *
 * AMQP cannot list queues, so the per-session names come from the database
 * (every row of `sessions`), and each name is checked with a passive declare
 * on a channel of its own (a missing queue closes the channel with 404).
 * Queues with a consumer are never removed: a consumer means the old
 * log-processor still runs, and it would declare them again at once.
 */
import type { AMQPChannel } from "@cloudamqp/amqp-client";
import type { BrokerSession } from "../amqp/connection.ts";
import { openOwnChannel } from "../amqp/private-api.ts";
import { errorMessage } from "../util/errors.ts";
import { deadLetterQueueName } from "../amqp/topology.ts";
import type { Config } from "../config.ts";
import { createPool, type Sql } from "../db/pool.ts";
import { connectToolBroker, describeUrl, plural, type ToolBrokerConfig } from "./broker.ts";
import { Progress, percent, type ToolStreams } from "./progress.ts";

export const LIFECYCLE_QUEUE = "log-processor-lifecycle";
export const LIFECYCLE_DLQ = "log-processor-lifecycle-dlq";
export const sessionLogQueue = (sessionId: bigint | number): string => `logs.session.${sessionId}`;
// The log ingest's per-process queues (src/amqp/log-queue.ts) start with this.
const OWN_LOG_QUEUE_PREFIX = "manman-processor.";

export interface QueueState {
  messages: number;
  consumers: number;
}

export interface CutoverBroker {
  /** The queue's counts, or undefined when it does not exist. */
  inspect(name: string): Promise<QueueState | undefined>;
  /** Deletes the queue unless a consumer uses it; resolves with the messages it held. */
  remove(name: string): Promise<number>;
}

export interface CutoverDeps {
  broker: CutoverBroker;
  sessionIds(): Promise<readonly (bigint | number)[]>;
  isOwnQueue(name: string): boolean;
  /** Results, one line each (stdout). */
  print(line: string): void;
  /** Problems, one line each (stderr). */
  warn(line: string): void;
  /** Where a long run is (a terminal's one updating line). */
  progress?(text: string): void;
}

export interface CutoverResult {
  ok: boolean;
  removed: { name: string; messages: number }[];
}

// Checks in flight at once: enough to get through thousands of sessions in
// seconds over a network, few enough to stay far below the channel limit.
const CONCURRENT_CHECKS = 8;

export async function cutover(deps: CutoverDeps, options: { dryRun: boolean }): Promise<CutoverResult> {
  const ids = await deps.sessionIds();
  const names: string[] = [];
  for (const name of [LIFECYCLE_QUEUE, LIFECYCLE_DLQ, ...ids.map(sessionLogQueue)]) {
    if (deps.isOwnQueue(name)) deps.warn(`skipping ${name}: it is this processor's own queue`);
    else names.push(name);
  }
  let checked = 0;
  const states = await mapLimited(names, CONCURRENT_CHECKS, async (n) => {
    const state = await deps.broker.inspect(n);
    checked++;
    deps.progress?.(`checking queues: ${checked} of ${names.length} ${percent(checked, names.length)}`);
    return state;
  });
  const found = names.flatMap((name, i) => (states[i] ? [{ name, ...states[i] }] : []));
  const summary = `checked ${LIFECYCLE_QUEUE}, ${LIFECYCLE_DLQ} and the logs.session.<id> queues of ${plural(ids.length, "session")}`;

  if (found.length === 0) {
    deps.print(`nothing to remove: no queue of the deployed log-processor is left (${summary})`);
    return { ok: true, removed: [] };
  }
  const busy = found.filter((q) => q.consumers > 0);
  if (options.dryRun) for (const q of found) deps.print(`would remove ${q.name} (${plural(q.messages, "message")})`);
  if (busy.length > 0) {
    for (const q of busy) deps.warn(`${q.name} has ${plural(q.consumers, "consumer")}`);
    deps.warn("the deployed log-processor still seems to be running (it would declare its queues again): stop it, then run cutover again; nothing was removed");
    return { ok: false, removed: [] };
  }
  if (options.dryRun) {
    deps.print(`dry run: would remove ${plural(found.length, "queue")} holding ${plural(sum(found.map((q) => q.messages)), "message")}; nothing was changed (${summary})`);
    return { ok: true, removed: [] };
  }

  const removed: CutoverResult["removed"] = [];
  let failed = 0;
  for (const [i, q] of found.entries()) {
    try {
      const messages = await deps.broker.remove(q.name);
      removed.push({ name: q.name, messages });
      deps.print(`removed ${q.name} (${plural(messages, "message")})`);
    } catch (err) {
      // PRECONDITION_FAILED: a consumer attached since the check.
      failed++;
      deps.warn(`could not remove ${q.name}: ${errorMessage(err)}`);
    }
    deps.progress?.(`removing queues: ${i + 1} of ${found.length} ${percent(i + 1, found.length)}`);
  }
  const done = `removed ${plural(removed.length, "queue")} holding ${plural(sum(removed.map((q) => q.messages)), "message")}`;
  deps.print(failed === 0 ? `${done} (${summary})` : `${done}; ${failed} could not be removed (see above)`);
  return { ok: failed === 0, removed };
}

/** The broker side on a live session: one short-lived channel per call. */
export function sessionBroker(session: BrokerSession): CutoverBroker {
  const withChannel = async <T>(fn: (ch: AMQPChannel) => Promise<T>): Promise<T> => {
    const ch = await openOwnChannel(session);
    // A 404 closing the channel is the answer to a check, not an error to report.
    ch.onerror = () => {};
    try {
      return await fn(ch);
    } finally {
      if (!ch.closed) await ch.close().catch(() => {});
    }
  };
  return {
    inspect: (name) =>
      withChannel(async (ch) => {
        try {
          const ok = await ch.queueDeclare(name, { passive: true });
          return { messages: ok.messageCount, consumers: ok.consumerCount };
        } catch (err) {
          if (/NOT_FOUND|\b404\b/.test(errorMessage(err))) return undefined;
          throw err;
        }
      }),
    remove: (name) => withChannel(async (ch) => (await ch.queueDelete(name, { ifUnused: true })).messageCount),
  };
}

export async function sessionIdsFrom(sql: Sql): Promise<bigint[]> {
  const rows = await sql<{ session_id: bigint }[]>`SELECT session_id FROM sessions ORDER BY session_id`;
  return rows.map((r) => r.session_id);
}

/** The command: opens the database and the broker from the configuration, runs, closes. Returns the exit status. */
export async function runCutover(
  config: Pick<Config, "postgresUrl" | "queueName"> & ToolBrokerConfig,
  options: { dryRun: boolean },
  streams: ToolStreams,
): Promise<number> {
  const progress = new Progress(streams);
  const sql = createPool({ url: config.postgresUrl, max: 1, statementTimeoutMs: 30_000, name: "manman-processor-cutover" });
  let session: BrokerSession | undefined;
  try {
    let ids: bigint[];
    try {
      ids = await sessionIdsFrom(sql);
    } catch (err) {
      const hint = (err as { code?: string }).code === "42P01" ? " (no sessions table: is this the ManManV2 database?)" : "";
      progress.warn(`cutover failed: could not read the sessions from the database ${describeUrl(config.postgresUrl)}: ${errorMessage(err)}${hint}`);
      return 1;
    }
    const connected = await connectToolBroker(config, "manman-processor cutover");
    if (!connected.ok) {
      progress.warn(`cutover failed: ${connected.why}`);
      return 1;
    }
    session = connected.session;
    const own = new Set([config.queueName, deadLetterQueueName(config.queueName)]);
    const result = await cutover(
      {
        broker: sessionBroker(session),
        sessionIds: async () => ids,
        isOwnQueue: (name) => own.has(name) || name.startsWith(OWN_LOG_QUEUE_PREFIX),
        print: (line) => progress.print(line),
        warn: (line) => progress.warn(line),
        progress: (text) => progress.update(text),
      },
      options,
    );
    return result.ok ? 0 : 1;
  } catch (err) {
    progress.warn(`cutover failed: ${errorMessage(err)}`);
    return 1;
  } finally {
    progress.done();
    await session?.stop().catch(() => {});
    await sql.end({ timeout: 5 }).catch(() => {});
  }
}

function sum(ns: number[]): number {
  return ns.reduce((a, b) => a + b, 0);
}

/** `fn` over `items`, at most `limit` at a time; results in input order. */
async function mapLimited<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
