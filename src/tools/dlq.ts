/**
 * `manman-processor dlq list|show|replay|purge`: the dead-letter queue
 * (`<QUEUE_NAME>-dlq`) for operators. Every command reads through a
 * QueueReader (amqp/queue-reader.ts): the messages are held, never taken,
 * until an ack removes one, so `list` and `show` leave the queue exactly as
 * they found it, and a command killed at any point leaves every message it
 * had not removed in its place. `replay` removes a message only after its
 * copy was confirmed by the broker and routed to a queue; `purge` removes
 * only what its confirmation counted.
 */
import { randomUUID } from "node:crypto";
import { openQueueReader, QueueMissingError, type QueueReader } from "../amqp/queue-reader.ts";
import { deadLetterQueueName } from "../amqp/topology.ts";
import type { Config } from "../config.ts";
import { errorMessage } from "../util/errors.ts";
import { connectToolBroker, describeUrl, plural, type ToolBrokerConfig } from "./broker.ts";
import {
  bodyText, deadLetterJson, describeDeadLetter, describeFilter, formatAge, matcher, replayProperties, table,
  type DeadLetter, type DlqFilter,
} from "./dead-letters.ts";
import { percent, Progress, type ToolStreams } from "./progress.ts";

export interface DlqDeps {
  reader: QueueReader;
  queue: string;
  /** Results, one line each (stdout). */
  print(line: string): void;
  /** Problems, one line each (stderr). */
  warn(line: string): void;
  progress(text: string): void;
  now(): number;
}

/** Every held dead letter, in queue order, as they come; a message this replay run sent (its own copy come back) is skipped. */
async function* deadLetters(reader: QueueReader, skipReplayId?: string): AsyncGenerator<DeadLetter> {
  let position = 0;
  for (let d = await reader.next(); d; d = await reader.next()) {
    const letter = describeDeadLetter(d, ++position);
    if (skipReplayId === undefined || letter.replayId !== skipReplayId) yield letter;
  }
}

function noteOthers(deps: DlqDeps): void {
  if (deps.reader.consumers > 0) deps.warn(`note: ${deps.queue} has ${plural(deps.reader.consumers, "other consumer")}; messages they hold are not seen here`);
}

/** Serialises what AMQP headers may hold (bigints, byte arrays). */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_k, v) =>
    typeof v === "bigint" ? (Number.isSafeInteger(Number(v)) ? Number(v) : String(v)) : v instanceof Uint8Array ? Buffer.from(v).toString("base64") : v,
  );
}

export async function listDlq(deps: DlqDeps, options: { json: boolean }): Promise<number> {
  const now = deps.now();
  const letters: DeadLetter[] = [];
  for await (const d of deadLetters(deps.reader)) letters.push({ ...d, body: new Uint8Array() }); // bodies are not listed
  if (options.json) {
    deps.print(toJson({ queue: deps.queue, count: deps.reader.depth, messages: letters.map((d) => deadLetterJson(d, now, false)) }));
  } else {
    deps.print(`${deps.queue}: ${plural(deps.reader.depth, "message")}`);
    if (letters.length > 0) {
      const rows = letters.map((d) => [String(d.position), formatAge(d.deadLetteredAt === undefined ? undefined : now - d.deadLetteredAt), d.attempts === undefined ? "?" : String(d.attempts), d.routingKey, d.reason]);
      for (const line of table(["#", "AGE", "ATTEMPTS", "ROUTING KEY", "REASON"], rows)) deps.print(line);
    }
  }
  if (letters.length < deps.reader.depth) deps.warn(`listed ${letters.length} of ${deps.reader.depth}: the others left the queue while it was read (expired, or taken by another consumer)`);
  noteOthers(deps);
  return 0;
}

export async function showDlq(deps: DlqDeps, position: number, options: { json: boolean }): Promise<number> {
  let found: DeadLetter | undefined;
  for await (const d of deadLetters(deps.reader)) if (d.position === position) found = d;
  if (!found) {
    deps.warn(`${deps.queue} has no message ${position} (it holds ${plural(deps.reader.depth, "message")})`);
    return 1;
  }
  const now = deps.now();
  if (options.json) {
    deps.print(toJson(deadLetterJson(found, now, true)));
    return 0;
  }
  const d = found;
  const text = bodyText(d.body);
  const { headers: _h, ...properties } = d.properties;
  deps.print(`message ${position} of ${deps.reader.depth} in ${deps.queue}`);
  deps.print(`routing key:    ${d.routingKey} (replay sends it to exchange ${d.exchange})`);
  deps.print(`reason:         ${d.reason || "?"}`);
  deps.print(`attempts:       ${d.attempts ?? "?"}`);
  deps.print(`dead-lettered:  ${d.deadLetteredAt === undefined ? "?" : `${new Date(d.deadLetteredAt).toISOString()} (${formatAge(now - d.deadLetteredAt)} ago)`}`);
  deps.print(`properties:     ${toJson(properties)}`);
  deps.print("headers:");
  for (const [k, v] of Object.entries(d.headers)) deps.print(`  ${k}: ${typeof v === "string" ? v : toJson(v)}`);
  if (text === undefined) {
    deps.print(`body (${plural(d.body.length, "byte")}, not UTF-8; base64):`);
    deps.print(Buffer.from(d.body).toString("base64"));
  } else {
    deps.print(`body (${plural(d.body.length, "byte")}):`);
    deps.print(text);
  }
  return 0;
}

export async function replayDlq(deps: DlqDeps, filter: DlqFilter, replayId: string = randomUUID()): Promise<number> {
  const wanted = matcher(filter);
  const limit = filter.limit ?? Infinity;
  let replayed = 0;
  let unroutable = 0;
  let seen = 0;
  const total = deps.reader.depth;
  try {
    for await (const d of deadLetters(deps.reader, replayId)) {
      seen = d.position;
      if (replayed >= limit) break;
      if (!wanted(d)) continue;
      const outcome = await deps.reader.publish(d.exchange, d.routingKey, d.body, replayProperties(d, replayId));
      if (outcome === "unroutable") {
        unroutable++;
        deps.warn(`kept #${d.position} ${d.routingKey}: exchange ${d.exchange} routed it to no queue (is the processor's queue bound?)`);
        continue;
      }
      // Removed only now that the broker confirmed the copy.
      await deps.reader.remove(d.tag);
      replayed++;
      deps.print(`replayed #${d.position} ${d.routingKey} -> ${d.exchange} (${d.reason || "no reason"})`);
      deps.progress(`replaying: read ${seen} of ${total} ${percent(seen, total)}, replayed ${replayed}`);
    }
  } catch (err) {
    deps.warn(`replay stopped: ${errorMessage(err)}`);
    deps.print(`replayed ${plural(replayed, "message")} before the failure; the rest are still in ${deps.queue}`);
    return 1;
  }
  const filters = describeFilter(filter);
  deps.print(`replayed ${plural(replayed, "message")} from ${deps.queue}${filters ? ` (${filters})` : ""}${unroutable ? `; kept ${unroutable} no queue took` : ""}`);
  noteOthers(deps);
  return unroutable > 0 ? 1 : 0;
}

export interface PurgeOptions {
  yes: boolean;
  /** Asks the operator; resolves true to go ahead. Only called without --yes. */
  confirm(question: string): Promise<boolean>;
}

export async function purgeDlq(deps: DlqDeps, filter: DlqFilter, options: PurgeOptions): Promise<number> {
  const wanted = matcher(filter);
  const limit = filter.limit ?? Infinity;
  const chosen: DeadLetter[] = [];
  let seen = 0;
  for await (const d of deadLetters(deps.reader)) {
    seen = d.position;
    if (chosen.length >= limit) break;
    if (wanted(d)) chosen.push({ ...d, body: new Uint8Array() });
  }
  const filters = describeFilter(filter);
  if (chosen.length === 0) {
    deps.print(`nothing to purge: none of the ${plural(seen, "message")} in ${deps.queue} matched${filters ? ` ${filters}` : ""}`);
    return 0;
  }
  const what = `${plural(chosen.length, "message")} of ${deps.reader.depth} in ${deps.queue}${filters ? ` (${filters})` : ""}`;
  // The messages stay held while the operator reads the question, so what is
  // purged is exactly what was counted.
  if (!options.yes && !(await options.confirm(`Delete ${what} for good? Type yes to go ahead: `))) {
    deps.print(`nothing purged (not confirmed)`);
    return 1;
  }
  let purged = 0;
  try {
    for (const d of chosen) {
      await deps.reader.remove(d.tag);
      purged++;
      deps.print(`purged #${d.position} ${d.routingKey} (${d.reason || "no reason"})`);
      deps.progress(`purging: ${purged} of ${chosen.length} ${percent(purged, chosen.length)}`);
    }
  } catch (err) {
    deps.warn(`purge stopped: ${errorMessage(err)}`);
    return 1;
  }
  deps.print(`purged ${what}`);
  return 0;
}

/** What the command line asked for (src/cli.ts's DlqAction). */
export type DlqCommand =
  | { action: "list"; json: boolean }
  | { action: "show"; position: number; json: boolean }
  | { action: "replay"; filter: DlqFilter }
  | { action: "purge"; filter: DlqFilter; yes: boolean };

export interface DlqIo {
  streams: ToolStreams;
  /** Whether a person can answer purge's question. */
  stdinIsTTY: boolean;
  ask(question: string): Promise<boolean>;
}

/** The command: connects to the configured broker, reads `<QUEUE_NAME>-dlq`, acts, closes. Returns the exit status. */
export async function runDlq(config: Pick<Config, "queueName"> & ToolBrokerConfig, command: DlqCommand, io: DlqIo): Promise<number> {
  const progress = new Progress(io.streams);
  const name = `dlq ${command.action}`;
  if (command.action === "purge" && !command.yes && !io.stdinIsTTY) {
    progress.warn(`${name}: refusing to delete without --yes: stdin is not a terminal, so nobody can confirm`);
    return 2;
  }
  const queue = deadLetterQueueName(config.queueName);
  const connected = await connectToolBroker(config, `manman-processor ${name}`);
  if (!connected.ok) {
    progress.warn(`${name} failed: ${connected.why}`);
    return 1;
  }
  let reader: QueueReader | undefined;
  try {
    reader = await openQueueReader(connected.session, queue, { take: command.action === "show" ? command.position : undefined });
    const deps: DlqDeps = {
      reader,
      queue,
      print: (line) => progress.print(line),
      warn: (line) => progress.warn(line),
      progress: (text) => progress.update(text),
      now: Date.now,
    };
    switch (command.action) {
      case "list":
        return await listDlq(deps, command);
      case "show":
        return await showDlq(deps, command.position, command);
      case "replay":
        return await replayDlq(deps, command.filter);
      default:
        return await purgeDlq(deps, command.filter, { yes: command.yes, confirm: (q) => io.ask(q) });
    }
  } catch (err) {
    if (err instanceof QueueMissingError) progress.warn(`${name} failed: ${queue} does not exist on ${describeUrl(config.rabbitmqUrl)} (the processor declares it at start; is QUEUE_NAME right?)`);
    else progress.warn(`${name} failed: ${errorMessage(err)}`);
    return 1;
  } finally {
    progress.done();
    // Closing the channel hands back, in order, every message not removed.
    await reader?.close();
    await connected.session.stop().catch(() => {});
  }
}
