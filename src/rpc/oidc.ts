/**
 * OIDC bearer tokens (GRPC_AUTH_MODE=oidc), checked as the deployed
 * log-processor checks them (libs/go/grpcauth: go-oidc's IDTokenVerifier
 * with ClientID = GRPC_OIDC_CLIENT_ID), so the ManManV2 UI's forwarded user
 * tokens keep working:
 *
 * - the issuer's discovery document (`<issuer>/.well-known/openid-configuration`)
 *   must name exactly GRPC_OIDC_ISSUER as its issuer; its `jwks_uri` gives the keys;
 * - the JWT's signature verifies with a key of that set, by an asymmetric
 *   algorithm the issuer lists (never `none`, never HMAC with a public key);
 * - `iss` equals the issuer exactly, `aud` contains the client id (not
 *   `azp`: go-oidc checks `aud` only), `exp` is present and not past (no
 *   leeway, as go-oidc), `nbf` if present is not in the future.
 *
 * Keys: jose's remote key set caches them (re-read when older than
 * `cacheMaxAgeMs`) and re-reads them at once for a token whose `kid` it
 * does not know — a rotation — but at most once per `cooldownMs`, so
 * tokens with made-up kids cannot make it hammer the issuer.
 *
 * Unlike the deployed service, an unreachable issuer at start does not stop
 * the process: calls with tokens fail UNAVAILABLE until it answers (static
 * tokens keep working), and the discovery is retried at most once per
 * `discoveryRetryMs`.
 */
import { createRemoteJWKSet, errors, jwtVerify, type RemoteJWKSet } from "jose";
import { Code, ConnectError } from "@connectrpc/connect";
import { errorMessage } from "../util/errors.ts";
import type { TokenVerifier } from "./access.ts";

export interface OidcOptions {
  /** GRPC_OIDC_ISSUER, e.g. https://auth.example.com/realms/manman (no trailing slash, as tokens carry it). */
  issuer: string;
  /** GRPC_OIDC_CLIENT_ID: the audience a token must name. */
  clientId: string;
  cooldownMs?: number;
  cacheMaxAgeMs?: number;
  timeoutMs?: number;
  discoveryRetryMs?: number;
}

export interface OidcVerifier extends TokenVerifier {
  /** Reads the discovery document and the keys now; rejects with the reason when the issuer does not answer. */
  warm(): Promise<void>;
}

// 30 s between key re-reads forced by unknown kids: jose's default, and a
// real rotation (a new key in use) is picked up on the first token after it.
const COOLDOWN_MS = 30_000;
// 10 min: keys are re-read this often anyway, so a key the issuer removed
// (revoked) stops working within ten minutes; jose's default.
const CACHE_MAX_AGE_MS = 10 * 60_000;
// 5 s per request to the issuer: it answers in milliseconds when up; a call
// waiting longer is better told UNAVAILABLE and retried.
const TIMEOUT_MS = 5_000;
// 10 s between discovery attempts while the issuer is down: calls fail fast
// in between instead of each waiting for a timeout.
const DISCOVERY_RETRY_MS = 10_000;

// go-oidc's supported algorithms: asymmetric only. With HS256 a public key
// would become a shared secret anyone can sign with.
const ASYMMETRIC = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "Ed25519"];

interface Discovered {
  keys: RemoteJWKSet;
  algorithms: string[];
}

export function createOidcVerifier(options: OidcOptions): OidcVerifier {
  const issuer = options.issuer;
  const timeoutMs = options.timeoutMs ?? TIMEOUT_MS;
  const retryMs = options.discoveryRetryMs ?? DISCOVERY_RETRY_MS;
  let discovered: Promise<Discovered> | undefined;
  let failedAt = 0;
  let lastFailure: unknown;

  async function discover(): Promise<Discovered> {
    const url = `${issuer.replace(/\/+$/, "")}/.well-known/openid-configuration`;
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), headers: { accept: "application/json" } });
    if (!res.ok) throw new Error(`${url} answered HTTP ${res.status}`);
    const doc = (await res.json()) as { issuer?: unknown; jwks_uri?: unknown; id_token_signing_alg_values_supported?: unknown };
    // As go-oidc: a provider that names another issuer is refused, so a
    // token from that other issuer cannot pass the `iss` check either.
    if (doc.issuer !== issuer) throw new Error(`the discovery document names issuer ${JSON.stringify(doc.issuer)}, not ${JSON.stringify(issuer)}`);
    if (typeof doc.jwks_uri !== "string" || !/^https?:\/\//.test(doc.jwks_uri)) throw new Error("the discovery document has no http(s) jwks_uri");
    const listed = Array.isArray(doc.id_token_signing_alg_values_supported) ? doc.id_token_signing_alg_values_supported.filter((a) => ASYMMETRIC.includes(a)) : [];
    const keys = createRemoteJWKSet(new URL(doc.jwks_uri), {
      cooldownDuration: options.cooldownMs ?? COOLDOWN_MS,
      cacheMaxAge: options.cacheMaxAgeMs ?? CACHE_MAX_AGE_MS,
      timeoutDuration: timeoutMs,
    });
    return { keys, algorithms: listed.length > 0 ? listed : ASYMMETRIC };
  }

  function provider(): Promise<Discovered> {
    if (!discovered) {
      if (Date.now() - failedAt < retryMs) {
        return Promise.reject(new ConnectError(`the token issuer is unreachable: ${errorMessage(lastFailure)}`, Code.Unavailable));
      }
      discovered = discover();
      discovered.catch((err) => {
        discovered = undefined;
        failedAt = Date.now();
        lastFailure = err;
      });
    }
    return discovered.catch((err) => {
      throw err instanceof ConnectError ? err : new ConnectError(`the token issuer is unreachable: ${errorMessage(err)}`, Code.Unavailable);
    });
  }

  return {
    async verify(token) {
      const { keys, algorithms } = await provider();
      try {
        await jwtVerify(token, keys, { issuer, audience: options.clientId, algorithms, requiredClaims: ["exp"], clockTolerance: 0 });
      } catch (err) {
        throw refusal(err);
      }
    },
    async warm() {
      const { keys } = await provider();
      await keys.reload();
    },
  };
}

// The token's fault → UNAUTHENTICATED with jose's reason ("exp" claim
// timestamp check failed, unexpected "aud" claim value, …), as upstream
// says "invalid token: <reason>". The issuer's fault (keys unreachable or
// unreadable) → UNAVAILABLE, so clients retry instead of dropping the token.
const ISSUER_FAULTS = new Set(["ERR_JWKS_TIMEOUT", "ERR_JWKS_INVALID", "ERR_JWK_INVALID", "ERR_JOSE_GENERIC"]);

function refusal(err: unknown): ConnectError {
  // Only jose's own verdicts blame the token: a fetch or TLS error (which may
  // carry an ERR_… code of its own) is the issuer's side.
  if (err instanceof errors.JOSEError && !ISSUER_FAULTS.has(err.code)) {
    return new ConnectError(`invalid token: ${errorMessage(err)}`, Code.Unauthenticated);
  }
  return new ConnectError(`the token issuer's keys could not be read: ${errorMessage(err)}`, Code.Unavailable);
}
