/**
 * What host managers publish (CONTRACT §2), decoded with valibot.
 * Unknown fields are ignored and stripped (v.object), so an in-flight message
 * holds only the fields we use however much a sender adds; a missing or
 * mistyped required field is a permanent error. Pure: bytes and a routing key in, a typed event or a
 * reason out.
 *
 * Go integers have no "absent" form, so a real host sends `"sgc_id": 0` when
 * it has none (keepalive, kill): 0 in an id or count field means "not given".
 * `exit_code` is the exception: the host sends it only when known (a Go
 * pointer with omitempty), so 0 there is a clean exit, not an absence.
 */
import * as v from "valibot";
import { SESSION_STATES } from "./session-machine.ts";
import { errorMessage } from "../util/errors.ts";

/** Ids are BIGSERIAL; JSON numbers beyond 2^53 would lose digits, so refuse them. 0 = not given. */
const optionalId = v.pipe(
  v.nullish(v.pipe(v.number("must be a number"), v.safeInteger("must be a whole number"), v.minValue(0, "must not be negative"))),
  v.transform((n) => (n ? n : undefined)),
);
/** exit_code lands in an INTEGER column. */
const int32 = v.pipe(v.number("must be a number"), v.integer("must be a whole number"), v.minValue(-2147483648), v.maxValue(2147483647));
const count = v.optional(v.pipe(v.number(), v.integer(), v.minValue(0)));
/** size_bytes lands in a BIGINT column; 0 = not given (real hosts never send it). */
const optionalSize = v.pipe(
  v.nullish(v.pipe(v.number("must be a number"), v.safeInteger("must be a whole number"), v.minValue(0, "must not be negative"))),
  v.transform((n) => (n ? n : undefined)),
);
const optionalText = v.pipe(v.nullish(v.string("must be a string")), v.transform((s) => (s ? s : undefined)));

export const HostStatusMessage = v.object({
  server_id: optionalId,
  status: v.picklist(["online", "offline"], "must be online or offline"),
});

export const SessionStatusMessage = v.object({
  session_id: optionalId,
  /** Never needed: the row's sgc_id is the truth (CONTRACT §4). Kept for logs. */
  sgc_id: optionalId,
  status: v.picklist(SESSION_STATES, `must be one of ${SESSION_STATES.join(", ")}`),
  exit_code: v.nullish(int32),
});

export const HeartbeatMessage = v.object({
  server_id: optionalId,
  session_stats: v.nullish(
    v.object({ total: count, pending: count, starting: count, running: count, stopping: count, stopped: count, crashed: count }),
  ),
});

export const BACKUP_STATES = ["pending", "running", "completed", "failed"] as const;
export type BackupState = (typeof BACKUP_STATES)[number];

export const BackupStatusMessage = v.object({
  backup_id: optionalId,
  status: v.picklist(BACKUP_STATES, `must be one of ${BACKUP_STATES.join(", ")}`),
  s3_url: optionalText,
  size_bytes: optionalSize,
  error_message: optionalText,
});

/** After decoding, the entity id is always there (from the body, else from the routing key). */
type WithId<T, K extends string> = T & { [P in K]: number };
export type HostStatus = WithId<v.InferOutput<typeof HostStatusMessage>, "server_id">;
export type SessionStatus = WithId<v.InferOutput<typeof SessionStatusMessage>, "session_id">;
export type Heartbeat = WithId<v.InferOutput<typeof HeartbeatMessage>, "server_id">;
export type BackupStatus = WithId<v.InferOutput<typeof BackupStatusMessage>, "backup_id">;

export type EventMessage =
  | { kind: "host_status"; key: string; message: HostStatus }
  /** routingKey: kept for the session's timeline (processor_session_transitions). */
  | { kind: "session_status"; key: string; message: SessionStatus; routingKey?: string }
  | { kind: "heartbeat"; key: string; message: Heartbeat }
  | { kind: "backup_status"; key: string; message: BackupStatus };

export type EventKind = EventMessage["kind"];

export type Decoded = { ok: true; event: EventMessage } | { ok: false; reason: string };

const ROUTES = [
  { prefix: "status.host.", kind: "host_status", schema: HostStatusMessage, id: "server_id", entity: "server" },
  { prefix: "status.session.", kind: "session_status", schema: SessionStatusMessage, id: "session_id", entity: "session" },
  { prefix: "health.host.", kind: "heartbeat", schema: HeartbeatMessage, id: "server_id", entity: "server" },
  { prefix: "status.backup.", kind: "backup_status", schema: BackupStatusMessage, id: "backup_id", entity: "backup" },
] as const;

const utf8 = new TextDecoder("utf-8", { fatal: true });
const TRAILING_ID = /^[1-9]\d{0,15}$/;

/**
 * The routing key picks the schema; the body is the truth for ids, and the
 * key's trailing id (`status.session.<id>`) stands in when the body's is 0
 * or missing. `key` is the entity whose messages must be applied in order.
 */
export function decodeEvent(routingKey: string, body: Uint8Array | null): Decoded {
  const route = ROUTES.find((r) => routingKey.startsWith(r.prefix));
  if (!route) return { ok: false, reason: `no handler for routing key ${JSON.stringify(routingKey)}` };
  let json: unknown;
  try {
    json = JSON.parse(utf8.decode(body ?? new Uint8Array()));
  } catch (err) {
    return { ok: false, reason: `body is not JSON: ${errorMessage(err)}` };
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    return { ok: false, reason: `invalid ${route.kind.replace("_", " ")} message: body is not a JSON object` };
  }
  const parsed = v.safeParse(route.schema, json);
  if (!parsed.success) {
    const detail = parsed.issues.map((i) => `${v.getDotPath(i) ?? "body"}: ${i.message}`).join("; ");
    return { ok: false, reason: `invalid ${route.kind.replace("_", " ")} message: ${detail}` };
  }
  const message = parsed.output as Record<string, unknown>;
  const fromKey = routingKey.slice(route.prefix.length);
  const id = (message[route.id] as number | undefined) ?? (TRAILING_ID.test(fromKey) && Number.isSafeInteger(Number(fromKey)) ? Number(fromKey) : undefined);
  if (id === undefined) return { ok: false, reason: `invalid ${route.kind.replace("_", " ")} message: ${route.id}: not given (0 or missing, and no id in the routing key)` };
  message[route.id] = id;
  const kept = route.kind === "session_status" ? { routingKey } : {};
  return { ok: true, event: { kind: route.kind, key: `${route.entity}:${id}`, message, ...kept } as EventMessage };
}

/** The entity ids of a message, as log and dead-letter fields. */
export function idsOf(event: EventMessage): Record<string, number> {
  switch (event.kind) {
    case "session_status":
      return { session_id: event.message.session_id };
    case "backup_status":
      return { backup_id: event.message.backup_id };
    default:
      return { server_id: event.message.server_id };
  }
}
