import { expect, test } from "bun:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { bearerToken, createAccessCheck, isLoopback, PROTECTED_MODE_MESSAGE, type AccessCheck, type TokenVerifier } from "./access.ts";

const LOCAL = "127.0.0.1";
const REMOTE = "192.0.2.7";

/** The status a call gets, or "ok". */
async function answer(a: AccessCheck, authorization: string | null, peer: string | undefined): Promise<Code | "ok"> {
  try {
    await a.admit({ authorization, peer });
    return "ok";
  } catch (err) {
    expect(err).toBeInstanceOf(ConnectError);
    return (err as ConnectError).code;
  }
}

test("no credentials and no LOG_ACCESS: protected mode serves loopback only, refusing others with how to configure access", async () => {
  for (const a of [createAccessCheck([]), createAccessCheck({}), createAccessCheck({ access: "protected", tokens: [""] })]) {
    expect(a.mode).toBe("protected");
    for (const peer of ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1", "[::1]"]) expect(await answer(a, null, peer)).toBe("ok");
    for (const peer of [REMOTE, "10.0.0.1", "::ffff:10.0.0.1", "fd00::2", "128.0.0.1", "0.0.0.0", "", undefined]) {
      expect(await answer(a, null, peer)).toBe(Code.PermissionDenied);
    }
  }
  const refused = await createAccessCheck([]).admit({ authorization: null, peer: REMOTE }).catch((e: ConnectError) => e.rawMessage);
  expect(refused).toBe(PROTECTED_MODE_MESSAGE);
  for (const setting of ["LOG_ACCESS_TOKEN", "GRPC_AUTH_MODE=oidc", "GRPC_OIDC_ISSUER", "GRPC_OIDC_CLIENT_ID", "LOG_ACCESS=open"]) expect(refused).toContain(setting);
});

test("a forwarded header does not make a remote client local", async () => {
  const a = createAccessCheck([]);
  // Only the peer counts; the caller carries no header but Authorization.
  expect(await answer(a, "Bearer anything", REMOTE)).toBe(Code.PermissionDenied);
});

test("LOG_ACCESS=open without credentials: everyone", async () => {
  const a = createAccessCheck({ access: "open" });
  expect(a.mode).toBe("open");
  expect(await answer(a, null, REMOTE)).toBe("ok");
  expect(await answer(a, null, undefined)).toBe("ok");
});

test("with tokens: any configured token is granted, from anywhere; others are UNAUTHENTICATED, from loopback too", async () => {
  for (const access of ["protected", "open"] as const) {
    const a = createAccessCheck({ tokens: ["old-token", "new-token"], access });
    expect(a.mode).toBe("credentials");
    expect(await answer(a, "Bearer new-token", REMOTE)).toBe("ok");
    expect(await answer(a, "bearer old-token", LOCAL)).toBe("ok");
    for (const h of ["Bearer new-toke", "Bearer new-token-x", "Basic bmV3LXRva2Vu", "", null]) {
      expect(await answer(a, h, LOCAL)).toBe(Code.Unauthenticated);
      expect(await answer(a, h, REMOTE)).toBe(Code.Unauthenticated);
    }
  }
});

test("tokens and OIDC together: either passes; only JWT-shaped tokens reach the verifier", async () => {
  const seen: string[] = [];
  const oidc: TokenVerifier = {
    async verify(token) {
      seen.push(token);
      if (token !== "good.jwt.sig") throw new ConnectError("invalid token: bad signature", Code.Unauthenticated);
    },
  };
  const both = createAccessCheck({ tokens: ["static"], oidc });
  expect(both.mode).toBe("credentials");
  expect(both.summary).toContain("LOG_ACCESS_TOKEN or OIDC");
  expect(await answer(both, "Bearer static", REMOTE)).toBe("ok");
  expect(await answer(both, "Bearer good.jwt.sig", REMOTE)).toBe("ok");
  expect(await answer(both, "Bearer bad.jwt.sig", REMOTE)).toBe(Code.Unauthenticated);
  expect(await answer(both, "Bearer not-a-jwt", REMOTE)).toBe(Code.Unauthenticated);
  expect(await answer(both, null, LOCAL)).toBe(Code.Unauthenticated);
  expect(seen).toEqual(["good.jwt.sig", "bad.jwt.sig"]);
  const oidcOnly = createAccessCheck({ oidc, access: "open" });
  expect(oidcOnly.mode).toBe("credentials");
  expect(await answer(oidcOnly, "Bearer static", LOCAL)).toBe(Code.Unauthenticated);
  expect(await answer(oidcOnly, "Bearer good.jwt.sig", REMOTE)).toBe("ok");
});

test("isLoopback: the loopback range only", () => {
  expect(["127.0.0.1", "127.255.255.254", "::1", "0:0:0:0:0:0:0:1", "::FFFF:127.0.0.1"].every(isLoopback)).toBe(true);
  expect(["192.0.2.2", "::", "::ffff:192.0.2.2", "localhost", "127.0.0.1.evil", "1127.0.0.1", undefined].some(isLoopback)).toBe(false);
});

test("bearerToken reads RFC 6750 headers", () => {
  expect(bearerToken("Bearer abc")).toBe("abc");
  expect(bearerToken("  BEARER   abc  ")).toBe("abc");
  expect(bearerToken("Bearer a b")).toBeUndefined();
  expect(bearerToken("Bearer")).toBeUndefined();
});
