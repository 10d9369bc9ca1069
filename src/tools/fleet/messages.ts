/**
 * What a real ManManV2 host manager publishes, byte for byte (UPSTREAM.md §1,
 * CONTRACT §2): routing keys, bodies as Go's json.Marshal writes them (field
 * order of the struct; integers without omitempty, so "no sgc_id" is
 * `"sgc_id":0`; `exit_code` only when the host has one) and the publish
 * properties. Pure: the fleet (fleet.ts), the simulate/demo tools and the
 * host-manager replay test all build their messages here.
 */

/** The exchange host managers publish to (CONTRACT §1). */
export const HOST_EXCHANGE = "manman";

/**
 * Properties of every host message (L/publisher.go): JSON, persistent, a
 * timestamp, and an empty headers table (the OTel headers are only set when
 * the context carries a span, which host contexts never do).
 */
export function hostProperties(now: Date): { contentType: string; deliveryMode: number; timestamp: Date; headers: Record<string, never> } {
  return { contentType: "application/json", deliveryMode: 2, timestamp: now, headers: {} };
}

export type HostStatus = "online" | "offline";

export function hostStatusKey(serverId: number): string {
  return `status.host.${serverId}`;
}
export function hostStatusBody(serverId: number, status: HostStatus): string {
  return `{"server_id":${serverId},"status":"${status}"}`;
}

/** The host's in-memory session map, counted (stopped and crashed are removed from it, so ~always 0). */
export interface SessionStats {
  total: number;
  pending: number;
  starting: number;
  running: number;
  stopping: number;
  stopped: number;
  crashed: number;
}

export function heartbeatKey(serverId: number): string {
  return `health.host.${serverId}`;
}
export function heartbeatBody(serverId: number, s: SessionStats): string {
  const stats = `{"total":${s.total},"pending":${s.pending},"starting":${s.starting},"running":${s.running},"stopping":${s.stopping},"stopped":${s.stopped},"crashed":${s.crashed}}`;
  return `{"server_id":${serverId},"session_stats":${stats}}`;
}

/** The statuses a host publishes for a session (it never sends pending or lost). */
export type HostSessionStatus = "starting" | "running" | "stopping" | "stopped" | "crashed";

export function sessionStatusKey(sessionId: number): string {
  return `status.session.${sessionId}`;
}
/** `sgcId` 0 where the host has none (the addon keepalive, a kill); `exitCode` only when the host read one. */
export function sessionStatusBody(sessionId: number, sgcId: number, status: HostSessionStatus, exitCode?: number): string {
  const exit = exitCode === undefined ? "" : `,"exit_code":${exitCode}`;
  return `{"session_id":${sessionId},"sgc_id":${sgcId},"status":"${status}"${exit}}`;
}

export type LogSource = "stdout" | "stderr" | "host";

export function logLineKey(sessionId: number): string {
  return `logs.session.${sessionId}`;
}
/** One line: `timestamp` Unix ms, `message` without its newline. */
export function logLineBody(sessionId: number, timestampMs: number, source: LogSource, message: string): string {
  return `{"session_id":${sessionId},"timestamp":${timestampMs},"source":"${source}","message":${goString(message)}}`;
}

/**
 * A string as Go's json.Marshal writes it: JSON.stringify's escapes, plus
 * the HTML-safe ones Go adds by default (<, >, & as \u003c, \u003e,
 * \u0026) and U+2028/U+2029, which JavaScript would otherwise leave raw.
 */
export function goString(text: string): string {
  return JSON.stringify(text).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

export function backupStatusKey(backupId: number): string {
  return `status.backup.${backupId}`;
}
/** `completed` carries `s3_url` = "s3://" + key (no bucket) and never `size_bytes`. */
export function backupCompletedBody(backupId: number, key: string): string {
  return `{"backup_id":${backupId},"s3_url":"s3://${key}","status":"completed"}`;
}
export function backupFailedBody(backupId: number, error: string): string {
  return `{"backup_id":${backupId},"status":"failed","error_message":${goString(error)}}`;
}
