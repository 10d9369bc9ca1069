/**
 * Who may call the log services (LogProcessor, LogHistory, SessionViewer),
 * decided once per call before its request body is read:
 *
 * - **credentials**: a static bearer token (LOG_ACCESS_TOKEN, comma-separated
 *   so a token can be rotated: add the new one, move clients, drop the old)
 *   and/or an OIDC access token (GRPC_AUTH_MODE=oidc, checked by `oidc.ts`);
 *   either passes. Every caller needs one, from this machine too.
 * - **protected** (no credentials, the default): like Redis's protected
 *   mode, only clients on this machine (loopback) are served; others get
 *   PERMISSION_DENIED saying how to configure access.
 * - **open** (no credentials, LOG_ACCESS=open): anyone who reaches a port.
 *
 * The client address is the TCP peer, never a forwarded header (any client
 * can write X-Forwarded-For). Transports hand it over: the fetch side from
 * the runtime, HTTP/2 from its socket, and router handlers read it from
 * their context (`PEER_ADDRESS`, `callerOf`).
 */
import { Code, ConnectError, createContextKey, type HandlerContext } from "@connectrpc/connect";

export type LogAccess = "protected" | "open";
export type AccessMode = "credentials" | LogAccess;

/** What a call brings: its Authorization header and the address it came from. */
export interface Caller {
  authorization: string | null | undefined;
  /** The TCP peer's address; undefined when the transport could not tell (treated as remote). */
  peer: string | undefined;
}

/** Verifies a bearer token that is not a static one (an OIDC JWT); throws ConnectError when it is refused. */
export interface TokenVerifier {
  verify(token: string): Promise<void>;
}

export interface AccessOptions {
  /** LOG_ACCESS_TOKEN. */
  tokens?: readonly string[];
  /** GRPC_AUTH_MODE=oidc. */
  oidc?: TokenVerifier;
  /** LOG_ACCESS: what happens when neither tokens nor oidc is configured; "protected" unless given. */
  access?: LogAccess;
}

export interface AccessCheck {
  readonly mode: AccessMode;
  /** One sentence for the start log line: which mode is on and what it means. */
  readonly summary: string;
  /** Resolves when the caller may proceed; throws UNAUTHENTICATED or PERMISSION_DENIED (or UNAVAILABLE when the token issuer cannot be reached). */
  admit(caller: Caller): Promise<void>;
}

/** The client's address in a router handler's context: set by fetch.ts and grpc-server.ts. */
export const PEER_ADDRESS = createContextKey<string | undefined>(undefined, { description: "the client's TCP address" });

/** The caller of a Connect router handler. */
export function callerOf(ctx: HandlerContext): Caller {
  return { authorization: ctx.requestHeader.get("authorization"), peer: ctx.values.get(PEER_ADDRESS) };
}

export const PROTECTED_MODE_MESSAGE =
  "this server has no credentials configured, so it answers only clients on its own machine (protected mode); " +
  "set LOG_ACCESS_TOKEN, or GRPC_AUTH_MODE=oidc with GRPC_OIDC_ISSUER and GRPC_OIDC_CLIENT_ID, " +
  "or LOG_ACCESS=open to let anyone who reaches the port read every session's logs";

const encoder = new TextEncoder();

/** Accepts a token list (LOG_ACCESS_TOKEN alone, protected when empty) or the full options. */
export function createAccessCheck(options: readonly string[] | AccessOptions): AccessCheck {
  const { tokens = [], oidc, access = "protected" } = isTokenList(options) ? { tokens: options } : options;
  const wanted = tokens.filter((t) => t.length > 0).map((t) => encoder.encode(t));
  if (wanted.length > 0 || oidc) {
    const names = [wanted.length > 0 ? "LOG_ACCESS_TOKEN" : "", oidc ? "OIDC (GRPC_AUTH_MODE=oidc)" : ""].filter(Boolean).join(" or ");
    return {
      mode: "credentials",
      summary: `log access: every call needs a bearer token (${names})`,
      admit: (caller) => admitWithCredentials(caller, wanted, oidc),
    };
  }
  if (access === "open") {
    return {
      mode: "open",
      summary: "log access: OPEN (LOG_ACCESS=open, no credentials): anyone who reaches the HTTP or gRPC port can read every session's logs",
      admit: async () => {},
    };
  }
  return {
    mode: "protected",
    summary: "log access: protected mode (no credentials configured): only clients on this machine are served; set LOG_ACCESS_TOKEN or GRPC_AUTH_MODE=oidc, or LOG_ACCESS=open",
    admit: async (caller) => {
      if (!isLoopback(caller.peer)) throw new ConnectError(PROTECTED_MODE_MESSAGE, Code.PermissionDenied);
    },
  };
}

async function admitWithCredentials(caller: Caller, wanted: Uint8Array[], oidc: TokenVerifier | undefined): Promise<void> {
  const token = bearerToken(caller.authorization);
  if (token === undefined) throw new ConnectError("this call needs an Authorization: Bearer <token> header", Code.Unauthenticated);
  if (wanted.length > 0 && matchesAny(wanted, encoder.encode(token))) return;
  // Only a JWT (three dot-separated parts) is worth a signature check; a
  // wrong static token gets the same answer without one.
  if (oidc && token.split(".").length === 3) return oidc.verify(token);
  throw new ConnectError("the bearer token is not valid", Code.Unauthenticated);
}

/**
 * True for the loopback range (127.0.0.0/8, ::1, and 127.x written as an
 * IPv4-mapped IPv6 address, as a dual-stack socket reports it). Anything
 * else, and an unknown address, is remote.
 */
export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  const a = address.toLowerCase().replace(/^\[|\]$/g, "");
  if (a === "::1" || a === "0:0:0:0:0:0:0:1") return true;
  const v4 = a.startsWith("::ffff:") ? a.slice("::ffff:".length) : a;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4);
}

/** The token of an `Authorization: Bearer <token>` header (scheme case-insensitive, RFC 6750). */
export function bearerToken(authorization: string | null | undefined): string | undefined {
  const m = /^\s*bearer\s+(\S+)\s*$/i.exec(authorization ?? "");
  return m ? m[1] : undefined;
}

// Compare against every token, without stopping early, so the time taken
// tells nothing about which or how much of a token matched.
function matchesAny(wanted: Uint8Array[], given: Uint8Array): boolean {
  let match = false;
  for (const w of wanted) match = constantTimeEqual(w, given) || match;
  return match;
}

function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  let diff = a.length ^ b.length;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ (b[i % Math.max(1, b.length)] ?? 0);
  return diff === 0;
}

function isTokenList(o: readonly string[] | AccessOptions): o is readonly string[] {
  return Array.isArray(o);
}
