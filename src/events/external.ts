/**
 * The bodies of derived events on the external exchange (CONTRACT §4):
 * `{"server_id", "status"}` for hosts, `{"session_id", "sgc_id", "status",
 * "exit_code"?}` for sessions, and `log_tail` last on crashed and lost ones
 * (an addition: the session's last lines, cut and formatted by
 * logs/tail.ts when the move was applied; docs/events.md). Payloads come
 * back from PostgreSQL as JSONB, whose key order is not ours, so keys are
 * put in the contract's order here.
 */
const ORDER = ["server_id", "session_id", "sgc_id", "status", "exit_code", "log_tail"];

export function renderEventBody(payload: Record<string, unknown>): string {
  const keys = Object.keys(payload).sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : 1));
  const ordered: Record<string, unknown> = {};
  for (const k of keys) if (payload[k] !== null && payload[k] !== undefined) ordered[k] = payload[k];
  return JSON.stringify(ordered);
}

function rank(key: string): number {
  const i = ORDER.indexOf(key);
  return i === -1 ? ORDER.length : i;
}
