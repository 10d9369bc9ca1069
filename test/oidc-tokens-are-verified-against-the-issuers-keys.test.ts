/**
 * GRPC_AUTH_MODE=oidc's verifier (src/rpc/oidc.ts) against an issuer this
 * test serves on 127.0.0.1 (test/support/oidc-issuer.ts): a token signed by
 * the issuer's key, for our client id, not expired, passes; expired, wrong
 * issuer, wrong audience (azp alone is not enough, as upstream), bad
 * signature, `none`, HMAC and exp-less tokens are UNAUTHENTICATED; keys are
 * cached, a rotated key is fetched on first sight but made-up kids cannot
 * make it refetch more than once per cooldown; an unreachable or
 * mismatching issuer is UNAVAILABLE and retried after a pause.
 */
import { afterAll, beforeAll, beforeEach, expect, test } from "bun:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { SignJWT } from "jose";
import { createOidcVerifier, type OidcVerifier } from "../src/rpc/oidc.ts";
import { mint, newKey, startIssuer, unsigned, type IssuerKey, type TestIssuer } from "./support/oidc-issuer.ts";

const CLIENT_ID = "manman-log-processor";
let issuer: TestIssuer;
let keyA: IssuerKey;
let keyB: IssuerKey;
let ecKey: IssuerKey;

beforeAll(async () => {
  [keyA, keyB, ecKey] = await Promise.all([newKey("key-a"), newKey("key-b"), newKey("key-ec", "ES256")]);
  issuer = await startIssuer([keyA, ecKey]);
});
afterAll(() => issuer?.stop());
beforeEach(() => {
  issuer.serve([keyA, ecKey]);
  issuer.discovery = undefined;
  issuer.failWith = undefined;
  issuer.hits.clear();
});

const verifier = (o: Partial<Parameters<typeof createOidcVerifier>[0]> = {}) => createOidcVerifier({ issuer: issuer.url, clientId: CLIENT_ID, ...o });

async function outcome(v: OidcVerifier, token: string): Promise<{ code: Code | "ok"; message?: string }> {
  try {
    await v.verify(token);
    return { code: "ok" };
  } catch (err) {
    expect(err).toBeInstanceOf(ConnectError);
    return { code: (err as ConnectError).code, message: (err as ConnectError).rawMessage };
  }
}

test("a token the issuer signed for our client id passes (RSA and EC keys; aud as a list or a string)", async () => {
  const v = verifier();
  expect((await outcome(v, await mint(keyA, issuer.url))).code).toBe("ok");
  expect((await outcome(v, await mint(ecKey, issuer.url, { aud: CLIENT_ID }))).code).toBe("ok");
});

test("expired, wrong issuer, wrong audience, azp-only, no exp: UNAUTHENTICATED with the reason", async () => {
  const v = verifier();
  const now = Math.floor(Date.now() / 1000);
  const cases: [string, Record<string, unknown>, string][] = [
    ["expired", { exp: now - 1 }, '"exp"'],
    ["wrong issuer", { iss: `${issuer.url}-other` }, '"iss"'],
    ["wrong audience", { aud: ["account"] }, '"aud"'],
    ["azp is our client but aud is not (go-oidc checks aud)", { aud: "account", azp: CLIENT_ID }, '"aud"'],
    ["no exp", { exp: undefined }, '"exp"'],
    ["not yet valid", { nbf: now + 600 }, '"nbf"'],
  ];
  for (const [what, claims, reason] of cases) {
    const r = await outcome(v, await mint(keyA, issuer.url, claims));
    expect({ what, code: r.code }).toEqual({ what, code: Code.Unauthenticated });
    expect(r.message).toContain(reason);
  }
});

test("bad signatures, alg none and HMAC are refused", async () => {
  const v = verifier();
  // Signed by key B but claiming key A's kid: the signature does not verify.
  const forged = await mint({ ...keyB, kid: keyA.kid }, issuer.url);
  expect((await outcome(v, forged)).code).toBe(Code.Unauthenticated);
  // A valid token with one payload byte changed.
  const [h, p, s] = (await mint(keyA, issuer.url)).split(".");
  const tampered = `${h}.${p!.slice(0, -2)}${p!.slice(-2) === "fQ" ? "fR" : "fQ"}.${s}`;
  expect((await outcome(v, tampered)).code).toBe(Code.Unauthenticated);
  expect((await outcome(v, unsigned(keyA.kid, issuer.url))).code).toBe(Code.Unauthenticated);
  // HS256 (which discovery lists) keyed with a secret the attacker chose.
  const hmac = await new SignJWT({ iss: issuer.url, aud: CLIENT_ID, exp: Math.floor(Date.now() / 1000) + 60 })
    .setProtectedHeader({ alg: "HS256", kid: keyA.kid })
    .sign(new TextEncoder().encode("attacker-chosen-secret-of-32-bytes!!"));
  expect((await outcome(v, hmac)).code).toBe(Code.Unauthenticated);
  expect((await outcome(v, "not.a.jwt")).code).toBe(Code.Unauthenticated);
});

test("keys are cached: many verifications, one discovery and one key fetch", async () => {
  const v = verifier();
  for (let i = 0; i < 20; i++) expect((await outcome(v, await mint(keyA, issuer.url))).code).toBe("ok");
  expect(issuer.hits.get("/.well-known/openid-configuration")).toBe(1);
  expect(issuer.hits.get("/jwks")).toBe(1);
});

test("key rotation: a new kid is fetched on first sight; a removed key stops passing; made-up kids refetch at most once per cooldown", async () => {
  const v = verifier({ cooldownMs: 300 });
  expect((await outcome(v, await mint(keyA, issuer.url))).code).toBe("ok");
  // The issuer rotates: key B replaces key A.
  issuer.serve([keyB]);
  await Bun.sleep(350);
  expect((await outcome(v, await mint(keyB, issuer.url))).code).toBe("ok");
  expect(issuer.hits.get("/jwks")).toBe(2);
  const removed = await outcome(v, await mint(keyA, issuer.url));
  expect(removed.code).toBe(Code.Unauthenticated);
  // A flood of tokens with kids nobody issued, inside one cooldown: no more fetches.
  const before = issuer.hits.get("/jwks")!;
  const junk = await newKey("made-up");
  for (let i = 0; i < 50; i++) {
    expect((await outcome(v, await mint({ ...junk, kid: `made-up-${i}` }, issuer.url))).code).toBe(Code.Unauthenticated);
  }
  expect(issuer.hits.get("/jwks")! - before).toBeLessThanOrEqual(1);
});

test("keys already loaded keep working while the issuer is down", async () => {
  const v = verifier();
  await v.warm();
  issuer.failWith = 503;
  expect((await outcome(v, await mint(keyA, issuer.url))).code).toBe("ok");
});

test("an unreachable issuer is UNAVAILABLE, and discovery is retried only after a pause", async () => {
  issuer.failWith = 503;
  const v = verifier({ discoveryRetryMs: 300 });
  const token = await mint(keyA, issuer.url);
  const first = await outcome(v, token);
  expect(first.code).toBe(Code.Unavailable);
  expect(first.message).toContain("unreachable");
  expect((await outcome(v, token)).code).toBe(Code.Unavailable);
  expect(issuer.hits.get("/.well-known/openid-configuration")).toBe(1);
  issuer.failWith = undefined;
  await Bun.sleep(350);
  expect((await outcome(v, token)).code).toBe("ok");
  await expect(createOidcVerifier({ issuer: "http://127.0.0.1:9/realms/none", clientId: CLIENT_ID, timeoutMs: 500 }).warm()).rejects.toThrow("unreachable");
});

test("keys that cannot be fetched (refused connection, HTTP error) are UNAVAILABLE, not the token's fault", async () => {
  const token = await mint(keyA, issuer.url);
  issuer.discovery = { issuer: issuer.url, jwks_uri: "http://127.0.0.1:9/jwks" };
  const refused = await outcome(verifier({ timeoutMs: 1000 }), token);
  expect(refused.code).toBe(Code.Unavailable);
  issuer.discovery = { issuer: issuer.url, jwks_uri: `${issuer.url}/no-such-keys` };
  expect((await outcome(verifier(), token)).code).toBe(Code.Unavailable);
});

test("a discovery document naming another issuer is refused (as go-oidc), so its tokens never pass", async () => {
  issuer.discovery = { issuer: "https://elsewhere.example/realms/manman", jwks_uri: `${issuer.url}/jwks` };
  const r = await outcome(verifier(), await mint(keyA, issuer.url));
  expect(r.code).toBe(Code.Unavailable);
  expect(r.message).toContain("elsewhere.example");
});

test("only the algorithms discovery lists are accepted", async () => {
  issuer.discovery = { issuer: issuer.url, jwks_uri: `${issuer.url}/jwks`, id_token_signing_alg_values_supported: ["RS256"] };
  const v = verifier();
  expect((await outcome(v, await mint(keyA, issuer.url))).code).toBe("ok");
  expect((await outcome(v, await mint(ecKey, issuer.url))).code).toBe(Code.Unauthenticated);
});
