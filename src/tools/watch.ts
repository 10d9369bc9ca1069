/**
 * `manman-processor watch [PATTERN] [--json]`: tails the external exchange
 * (EXTERNAL_EXCHANGE), what other systems (a Slack bot, alerting) subscribe
 * to, through a queue of its own: server-named, exclusive and auto-delete,
 * so it takes nothing from anyone and vanishes with the command. One line
 * per event on stdout: readable, or one JSON object per line for a script
 * to read. Ctrl-C or SIGTERM ends it with status 0.
 *
 * The queue dies with a lost connection; the session reconnects by itself
 * and the queue is declared again, with a line on stderr, since events
 * published in between were not seen.
 */
import type { AMQPMessage } from "@cloudamqp/amqp-client";
import type { BrokerSession } from "../amqp/connection.ts";
import { openOwnChannel } from "../amqp/private-api.ts";
import type { Config } from "../config.ts";
import { aborted } from "../util/abort.ts";
import { errorMessage } from "../util/errors.ts";
import { connectToolBroker, type ToolBrokerConfig } from "./broker.ts";
import { bodyText } from "./dead-letters.ts";
import type { ToolStreams } from "./progress.ts";

export const DEFAULT_PATTERN = "manman.#";

export interface ExternalEvent {
  routingKey: string;
  /** The publish time the processor set (AMQP timestamps are whole seconds), else when it arrived. */
  timestamp: Date;
  body: Uint8Array;
}

export function toExternalEvent(m: Pick<AMQPMessage, "routingKey" | "properties" | "body">, now: Date): ExternalEvent {
  const t = m.properties.timestamp;
  return { routingKey: m.routingKey, timestamp: t instanceof Date && !Number.isNaN(t.getTime()) ? t : now, body: m.body ?? new Uint8Array() };
}

function parsedBody(body: Uint8Array): { json: unknown } | { text: string } {
  const text = bodyText(body) ?? `(${body.length} bytes, not UTF-8)`;
  try {
    return { json: JSON.parse(text) };
  } catch {
    return { text };
  }
}

/** `{"routing_key","timestamp","body"}`: body as parsed JSON, or its text when it is not JSON. */
export function eventJson(e: ExternalEvent): string {
  const b = parsedBody(e.body);
  return JSON.stringify({ routing_key: e.routingKey, timestamp: e.timestamp.toISOString(), body: "json" in b ? b.json : b.text });
}

/** A crashed or lost event's last log lines (docs/events.md): strings, printed beneath its line. */
const isLineList = (v: unknown): v is string[] => Array.isArray(v) && v.length > 0 && v.every((l) => typeof l === "string");

/**
 * `2026-11-25T13:44:37Z  manman.session.crashed  session_id=7 sgc_id=3 status=crashed exit_code=1`;
 * a non-empty `log_tail` shows as `log_tail=<n lines>` there and its lines
 * follow, indented with `| `, so 20 lines of up to 500 bytes stay readable.
 */
export function eventLine(e: ExternalEvent): string {
  const b = parsedBody(e.body);
  let fields: string;
  const below: string[] = [];
  if ("json" in b && b.json !== null && typeof b.json === "object" && !Array.isArray(b.json)) {
    fields = Object.entries(b.json as Record<string, unknown>)
      .map(([k, v]) => {
        if (k === "log_tail" && isLineList(v)) {
          // One printed line each: a line break inside one would look like another event.
          for (const l of v) below.push(`    | ${l.replace(/[\r\n]/g, " ")}`);
          return `${k}=<${v.length} lines>`;
        }
        return `${k}=${typeof v === "string" && /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v)}`;
      })
      .join(" ");
  } else fields = "json" in b ? JSON.stringify(b.json) : b.text;
  return [`${e.timestamp.toISOString().replace(/\.\d{3}Z$/, "Z")}  ${e.routingKey}  ${fields}`, ...below].join("\n");
}

export interface WatchOptions {
  pattern: string;
  json: boolean;
}

/** Declares the watch queue on a fresh channel of `session` and starts printing. */
async function attach(session: BrokerSession, exchange: string, options: WatchOptions, print: (line: string) => void): Promise<void> {
  const ch = await openOwnChannel(session);
  ch.onerror = () => {};
  // As amqp/topology.ts declares it, so watching before the processor's first start works.
  await ch.exchangeDeclare(exchange, "topic", { durable: true });
  const q = await ch.queueDeclare("", { exclusive: true, autoDelete: true, durable: false });
  await ch.queueBind(q.name, exchange, options.pattern);
  await ch.basicConsume(q.name, { noAck: true, exclusive: true }, (m) => {
    const e = toExternalEvent(m, new Date());
    print(options.json ? eventJson(e) : eventLine(e));
  });
}

/** The command: runs until `signal` aborts. Returns the exit status. */
export async function runWatch(
  config: Pick<Config, "externalExchange"> & ToolBrokerConfig,
  options: WatchOptions,
  io: { streams: ToolStreams; signal: AbortSignal },
): Promise<number> {
  const print = (line: string) => void io.streams.stdout.write(line + "\n");
  const note = (line: string) => void io.streams.stderr.write(line + "\n");
  let connects = 0;
  let firstError: unknown;
  const connected = await connectToolBroker(config, "manman-processor watch", {
    onLost: (why) => note(`watch: connection lost (${why}); reconnecting — events published meanwhile are not shown`),
    onConnect: async (session) => {
      connects++;
      try {
        await attach(session, config.externalExchange, options, print);
        if (connects > 1) note(`watch: reconnected; watching ${config.externalExchange} ${options.pattern} again`);
      } catch (err) {
        if (connects === 1) firstError = err;
        else note(`watch: could not watch again after reconnecting: ${errorMessage(err)}`);
      }
    },
  });
  if (!connected.ok) {
    note(`watch failed: ${connected.why}`);
    return 1;
  }
  try {
    if (firstError !== undefined) {
      note(`watch failed: could not watch ${config.externalExchange} ${options.pattern}: ${errorMessage(firstError)}`);
      return 1;
    }
    note(`watching exchange ${config.externalExchange} for ${options.pattern} (Ctrl-C to stop)`);
    await aborted(io.signal);
    return 0;
  } finally {
    await connected.session.stop().catch(() => {});
  }
}
