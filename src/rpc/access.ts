/**
 * Bearer tokens for the LogProcessor service (LOG_ACCESS_TOKEN, comma-
 * separated so a token can be rotated: add the new one, move clients, drop
 * the old). Pure; the service calls `check` with the Authorization header of
 * every call, whatever the protocol (Connect, gRPC-Web, gRPC).
 */
import { Code, ConnectError } from "@connectrpc/connect";

export type AccessResult = "open" | "granted" | "missing" | "wrong";

export interface AccessCheck {
  /** False when no token is configured: every call is allowed. */
  readonly required: boolean;
  check(authorization: string | null | undefined): AccessResult;
  /** Throws UNAUTHENTICATED unless the header carries a configured token. */
  assert(authorization: string | null | undefined): void;
}

const encoder = new TextEncoder();

export function createAccessCheck(tokens: readonly string[]): AccessCheck {
  const wanted = tokens.filter((t) => t.length > 0).map((t) => encoder.encode(t));
  const check = (authorization: string | null | undefined): AccessResult => {
    if (wanted.length === 0) return "open";
    const token = bearerToken(authorization);
    if (token === undefined) return "missing";
    const given = encoder.encode(token);
    // Compare against every token, without stopping early, so the time taken
    // tells nothing about which or how much of a token matched.
    let match = false;
    for (const w of wanted) match = constantTimeEqual(w, given) || match;
    return match ? "granted" : "wrong";
  };
  return {
    required: wanted.length > 0,
    check,
    assert(authorization) {
      const r = check(authorization);
      if (r === "missing") throw new ConnectError("this call needs an Authorization: Bearer <token> header", Code.Unauthenticated);
      if (r === "wrong") throw new ConnectError("the bearer token is not valid", Code.Unauthenticated);
    },
  };
}

/** The token of an `Authorization: Bearer <token>` header (scheme case-insensitive, RFC 6750). */
export function bearerToken(authorization: string | null | undefined): string | undefined {
  const m = /^\s*bearer\s+(\S+)\s*$/i.exec(authorization ?? "");
  return m ? m[1] : undefined;
}

function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  let diff = a.length ^ b.length;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ (b[i % Math.max(1, b.length)] ?? 0);
  return diff === 0;
}
