/**
 * What a dead letter says about itself, read from its headers: ours
 * (amqp/dead-letter.ts: x-death-reason, x-attempts, x-original-exchange,
 * x-original-routing-key, x-dead-lettered-at) or, for a message RabbitMQ
 * dead-lettered itself (the event queue's x-dead-letter-routing-key), its
 * x-death entry. Pure: the dlq commands format and filter with it.
 */
import type { AMQPProperties } from "@cloudamqp/amqp-client";
import type { HeldDelivery } from "../amqp/queue-reader.ts";
import { INTERNAL_EXCHANGE } from "../amqp/topology.ts";

/** Set on every replayed copy; a dead letter carrying this run's id is its own replay come back, and is not replayed again. */
export const REPLAY_ID_HEADER = "x-replay-id";

export interface DeadLetter {
  /** 1-based place in the queue when it was read. */
  position: number;
  tag: number;
  /** Where a replay sends it: x-original-exchange, or `manman` when that is missing or the default exchange. */
  exchange: string;
  routingKey: string;
  reason: string;
  attempts: number | undefined;
  /** Milliseconds since the epoch, when known. */
  deadLetteredAt: number | undefined;
  replayId: string | undefined;
  headers: Record<string, unknown>;
  properties: AMQPProperties;
  body: Uint8Array;
}

export interface DlqFilter {
  /** Glob over the original routing key: `*` any run of characters (dots too), `?` one. */
  match?: string;
  /** Case-insensitive part of the reason. */
  reason?: string;
  /** At most this many are acted on. */
  limit?: number;
}

type XDeath = { reason?: unknown; count?: unknown; exchange?: unknown; "routing-keys"?: unknown; time?: unknown };

export function describeDeadLetter(d: HeldDelivery, position: number): DeadLetter {
  const headers = (d.properties.headers ?? {}) as Record<string, unknown>;
  const death = (Array.isArray(headers["x-death"]) ? (headers["x-death"][0] as XDeath | undefined) : undefined) ?? {};
  const str = (v: unknown) => (typeof v === "string" ? v : undefined);
  const num = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v : typeof v === "bigint" ? Number(v) : undefined);
  const deathKeys = Array.isArray(death["routing-keys"]) ? death["routing-keys"] : [];
  const at = str(headers["x-dead-lettered-at"]);
  const deadLetteredAt =
    (at !== undefined && !Number.isNaN(Date.parse(at)) ? Date.parse(at) : undefined) ??
    (death.time instanceof Date ? death.time.getTime() : undefined) ??
    (d.properties.timestamp instanceof Date ? d.properties.timestamp.getTime() : undefined);
  const nativeReason = str(death.reason);
  return {
    position,
    tag: d.tag,
    exchange: str(headers["x-original-exchange"]) || str(death.exchange) || INTERNAL_EXCHANGE,
    routingKey: str(headers["x-original-routing-key"]) ?? str(deathKeys[0]) ?? d.routingKey,
    reason: str(headers["x-death-reason"]) ?? (nativeReason ? `${nativeReason} (dead-lettered by RabbitMQ)` : ""),
    attempts: num(headers["x-attempts"]) ?? num(death.count),
    deadLetteredAt,
    replayId: str(headers[REPLAY_ID_HEADER]),
    headers,
    properties: d.properties,
    body: d.body,
  };
}

export function globToRegExp(glob: string): RegExp {
  const escaped = glob.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${escaped}$`);
}

/** Whether a dead letter passes the --match and --reason filters (the limit is the caller's). */
export function matcher(filter: DlqFilter): (d: DeadLetter) => boolean {
  const key = filter.match === undefined ? undefined : globToRegExp(filter.match);
  const reason = filter.reason?.toLowerCase();
  return (d) => (key === undefined || key.test(d.routingKey)) && (reason === undefined || d.reason.toLowerCase().includes(reason));
}

/** "--match status.session.* --reason 'does not exist' --limit 10", for messages; "" without filters. */
export function describeFilter(filter: DlqFilter): string {
  const parts: string[] = [];
  if (filter.match !== undefined) parts.push(`--match ${filter.match}`);
  if (filter.reason !== undefined) parts.push(`--reason ${JSON.stringify(filter.reason)}`);
  if (filter.limit !== undefined) parts.push(`--limit ${filter.limit}`);
  return parts.join(" ");
}

// Headers that describe the dead-lettering, not the message: a replayed copy
// goes out as the host manager sent it.
const DEAD_LETTER_HEADERS = /^x-(death|death-reason|attempts|original-exchange|original-routing-key|dead-lettered-at|first-death-.*|last-death-.*)$/;

/** The properties of a replayed copy: the original's, without dead-letter headers and the dead-letter expiration, marked with the run's id. */
export function replayProperties(d: DeadLetter, replayId: string): AMQPProperties {
  const headers: NonNullable<AMQPProperties["headers"]> = {};
  for (const [k, v] of Object.entries(d.properties.headers ?? {})) if (!DEAD_LETTER_HEADERS.test(k)) headers[k] = v;
  headers[REPLAY_ID_HEADER] = replayId;
  const { expiration: _expiration, headers: _headers, ...rest } = d.properties;
  return { ...rest, headers, deliveryMode: 2 };
}

/** 45s, 12m, 3h12m, 2d4h; "?" when unknown. */
export function formatAge(ms: number | undefined): string {
  if (ms === undefined) return "?";
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h${m % 60 ? `${m % 60}m` : ""}`;
  return `${Math.floor(h / 24)}d${h % 24 ? `${h % 24}h` : ""}`;
}

/** The body as text when it is UTF-8, else undefined. */
export function bodyText(body: Uint8Array): string | undefined {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(body);
  } catch {
    return undefined;
  }
}

/** A dead letter as one JSON-ready object (list --json leaves out headers and body). */
export function deadLetterJson(d: DeadLetter, now: number, full: boolean): Record<string, unknown> {
  const base = {
    position: d.position,
    age_seconds: d.deadLetteredAt === undefined ? null : Math.max(0, Math.floor((now - d.deadLetteredAt) / 1000)),
    dead_lettered_at: d.deadLetteredAt === undefined ? null : new Date(d.deadLetteredAt).toISOString(),
    exchange: d.exchange,
    routing_key: d.routingKey,
    reason: d.reason,
    attempts: d.attempts ?? null,
  };
  if (!full) return base;
  const text = bodyText(d.body);
  return {
    ...base,
    properties: { ...d.properties, headers: undefined },
    headers: d.headers,
    ...(text === undefined ? { body_base64: Buffer.from(d.body).toString("base64") } : { body: text }),
  };
}

/** Rows under a header, columns padded to their widest cell; the last column is not padded. */
export function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join("  ").trimEnd();
  return [line(header), ...rows.map(line)];
}
