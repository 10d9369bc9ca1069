/**
 * A stand-in OIDC issuer on 127.0.0.1 (as Keycloak looks to a resource
 * server): a discovery document and a JWKS of keys the test generates, whose
 * served set can be changed mid-test (rotation), and a token minter.
 * Counts the requests each path gets, so tests can see caching.
 */
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from "jose";

export interface IssuerKey {
  kid: string;
  alg: string;
  privateKey: CryptoKey;
  jwk: JWK;
}

export interface TestIssuer {
  /** The issuer URL, as tokens carry it in `iss`. */
  url: string;
  /** Requests served per path ("/.well-known/openid-configuration", "/jwks"). */
  hits: Map<string, number>;
  /** Replaces the served key set (rotation); the keys stay usable for signing. */
  serve(keys: IssuerKey[]): void;
  /** Changes what discovery says (issuer, algs); undefined = the real one. */
  discovery: Record<string, unknown> | undefined;
  /** Answers every request with this status instead (an issuer that is down). */
  failWith: number | undefined;
  stop(): Promise<void>;
}

export async function newKey(kid: string, alg = "RS256"): Promise<IssuerKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: "sig" };
  return { kid, alg, privateKey, jwk };
}

export async function startIssuer(keys: IssuerKey[], realm = "/realms/manman"): Promise<TestIssuer> {
  let served = keys;
  const hits = new Map<string, number>();
  const state: { discovery: Record<string, unknown> | undefined; failWith: number | undefined } = { discovery: undefined, failWith: undefined };
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req: Request): Response {
      const path = new URL(req.url).pathname.slice(realm.length);
      hits.set(path, (hits.get(path) ?? 0) + 1);
      if (state.failWith) return new Response("down", { status: state.failWith });
      if (path === "/.well-known/openid-configuration") {
        return Response.json(state.discovery ?? { issuer: url, jwks_uri: `${url}/jwks`, id_token_signing_alg_values_supported: ["RS256", "ES256", "HS256"] });
      }
      if (path === "/jwks") return Response.json({ keys: served.map((k) => k.jwk) });
      return new Response("not found", { status: 404 });
    },
  });
  const url: string = `http://127.0.0.1:${server.port as number}${realm}`;
  return {
    url,
    hits,
    serve: (k) => void (served = k),
    get discovery() {
      return state.discovery;
    },
    set discovery(d) {
      state.discovery = d;
    },
    get failWith() {
      return state.failWith;
    },
    set failWith(s) {
      state.failWith = s;
    },
    stop: () => server.stop(true),
  };
}

/** A signed access token: iss, aud and a 5-minute exp by default, overridable (undefined removes a claim). */
export async function mint(key: IssuerKey, issuer: string, claims: JWTPayload & Record<string, unknown> = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const payload: Record<string, unknown> = { iss: issuer, aud: ["manman-log-processor", "account"], sub: "user-1", azp: "manmanv2-ui", iat: now, exp: now + 300, ...claims };
  for (const [k, v] of Object.entries(payload)) if (v === undefined) delete payload[k];
  return new SignJWT(payload).setProtectedHeader({ alg: key.alg, kid: key.kid, typ: "JWT" }).sign(key.privateKey);
}

/** An unsigned token (`alg: none`), which must never pass. */
export function unsigned(kid: string, issuer: string): string {
  const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  return `${b64({ alg: "none", typ: "JWT", kid })}.${b64({ iss: issuer, aud: "manman-log-processor", sub: "x", exp: now + 300 })}.`;
}
