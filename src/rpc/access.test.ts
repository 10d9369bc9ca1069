import { expect, test } from "bun:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { bearerToken, createAccessCheck } from "./access.ts";

test("no tokens configured: every call is open", () => {
  const a = createAccessCheck([]);
  expect(a.required).toBe(false);
  expect(a.check(null)).toBe("open");
  expect(() => a.assert(undefined)).not.toThrow();
});

test("with tokens: any configured token is granted, others are refused", () => {
  const a = createAccessCheck(["old-token", "new-token"]);
  expect(a.required).toBe(true);
  expect(a.check("Bearer new-token")).toBe("granted");
  expect(a.check("bearer old-token")).toBe("granted");
  expect(a.check("Bearer new-toke")).toBe("wrong");
  expect(a.check("Bearer new-token-x")).toBe("wrong");
  expect(a.check("Basic bmV3LXRva2Vu")).toBe("missing");
  expect(a.check("")).toBe("missing");
  expect(a.check(null)).toBe("missing");
});

test("assert throws UNAUTHENTICATED", () => {
  const a = createAccessCheck(["s3cret"]);
  for (const h of [null, "Bearer nope"]) {
    try {
      a.assert(h);
      throw new Error("no throw");
    } catch (err) {
      expect(err).toBeInstanceOf(ConnectError);
      expect((err as ConnectError).code).toBe(Code.Unauthenticated);
    }
  }
  expect(() => a.assert("Bearer s3cret")).not.toThrow();
});

test("bearerToken reads RFC 6750 headers", () => {
  expect(bearerToken("Bearer abc")).toBe("abc");
  expect(bearerToken("  BEARER   abc  ")).toBe("abc");
  expect(bearerToken("Bearer a b")).toBeUndefined();
  expect(bearerToken("Bearer")).toBeUndefined();
});
