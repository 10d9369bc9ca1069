/**
 * What host managers publish (CONTRACT §2), decoded with valibot.
 * Unknown fields are ignored; a missing or mistyped required field is a
 * permanent error. Pure: bytes and a routing key in, a typed event or a
 * reason out.
 */
import * as v from "valibot";
import { SESSION_STATES } from "./session-machine.ts";

/** Ids are BIGSERIAL; JSON numbers beyond 2^53 would lose digits, so refuse them. */
const id = v.pipe(v.number("must be a number"), v.safeInteger("must be a whole number"), v.minValue(1, "must be positive"));
/** exit_code lands in an INTEGER column. */
const int32 = v.pipe(v.number("must be a number"), v.integer("must be a whole number"), v.minValue(-2147483648), v.maxValue(2147483647));
const count = v.optional(v.pipe(v.number(), v.integer(), v.minValue(0)));

export const HostStatusMessage = v.looseObject({
  server_id: id,
  status: v.picklist(["online", "offline"], "must be online or offline"),
});

export const SessionStatusMessage = v.looseObject({
  session_id: id,
  sgc_id: id,
  status: v.picklist(SESSION_STATES, `must be one of ${SESSION_STATES.join(", ")}`),
  exit_code: v.nullish(int32),
});

export const HeartbeatMessage = v.looseObject({
  server_id: id,
  session_stats: v.nullish(
    v.looseObject({ total: count, pending: count, starting: count, running: count, stopping: count, stopped: count, crashed: count }),
  ),
});

export type HostStatus = v.InferOutput<typeof HostStatusMessage>;
export type SessionStatus = v.InferOutput<typeof SessionStatusMessage>;
export type Heartbeat = v.InferOutput<typeof HeartbeatMessage>;

export type EventMessage =
  | { kind: "host_status"; key: string; message: HostStatus }
  | { kind: "session_status"; key: string; message: SessionStatus }
  | { kind: "heartbeat"; key: string; message: Heartbeat };

export type Decoded = { ok: true; event: EventMessage } | { ok: false; reason: string };

const ROUTES = [
  { prefix: "status.host.", kind: "host_status", schema: HostStatusMessage },
  { prefix: "status.session.", kind: "session_status", schema: SessionStatusMessage },
  { prefix: "health.host.", kind: "heartbeat", schema: HeartbeatMessage },
] as const;

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * The routing key picks the schema; the body is the truth for ids (the key's
 * trailing id is informational, as in the deployed services). `key` is the
 * entity whose messages must be applied in order.
 */
export function decodeEvent(routingKey: string, body: Uint8Array | null): Decoded {
  const route = ROUTES.find((r) => routingKey.startsWith(r.prefix));
  if (!route) return { ok: false, reason: `no handler for routing key ${JSON.stringify(routingKey)}` };
  let json: unknown;
  try {
    json = JSON.parse(utf8.decode(body ?? new Uint8Array()));
  } catch (err) {
    return { ok: false, reason: `body is not JSON: ${err instanceof Error ? err.message : String(err)}` };
  }
  const parsed = v.safeParse(route.schema, json);
  if (!parsed.success) {
    const detail = parsed.issues.map((i) => `${v.getDotPath(i) ?? "body"}: ${i.message}`).join("; ");
    return { ok: false, reason: `invalid ${route.kind.replace("_", " ")} message: ${detail}` };
  }
  const m = parsed.output as { server_id?: number; session_id?: number };
  const key = route.kind === "session_status" ? `session:${m.session_id}` : `server:${m.server_id}`;
  return { ok: true, event: { kind: route.kind, key, message: parsed.output } as EventMessage };
}
