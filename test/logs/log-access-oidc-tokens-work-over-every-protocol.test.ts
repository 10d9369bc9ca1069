/**
 * GRPC_AUTH_MODE=oidc beside LOG_ACCESS_TOKEN, as the ManManV2 UI forwards
 * its users' tokens to the deployed log-processor: over Connect, gRPC-Web
 * and gRPC, an access token from the (local, test-served) issuer streams, so
 * does the static token, and an expired or foreign token, or none, is
 * UNAUTHENTICATED, from this machine too. The issuer's keys are loaded at
 * start and said so in the log.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { Code } from "@connectrpc/connect";
import { createVhost, waitFor, type TestVhost } from "../support/services.ts";
import { mint, newKey, startIssuer, type IssuerKey, type TestIssuer } from "../support/oidc-issuer.ts";
import { hostManager, PROTOCOLS, startLogStack, take, type HostManager, type LogStack } from "./support.ts";
import { codeOf } from "../support/rpc-status.ts";

setDefaultTimeout(60_000);

let vhost: TestVhost;
let stack: LogStack;
let hm: HostManager;
let issuer: TestIssuer;
let key: IssuerKey;

beforeAll(async () => {
  key = await newKey("k1");
  issuer = await startIssuer([key]);
  vhost = await createVhost("mmlogoidc");
  stack = await startLogStack(vhost.url, {
    GRPC_AUTH_MODE: "oidc",
    GRPC_OIDC_ISSUER: issuer.url,
    GRPC_OIDC_CLIENT_ID: "manman-log-processor",
    LOG_ACCESS_TOKEN: "static-token",
  });
  hm = await hostManager(vhost.url);
  await hm.line(5, "from the game");
  await waitFor(() => stack.ingest.ingested() >= 1, 20_000, "ingested");
});

afterAll(async () => {
  await hm?.close();
  await stack?.stop();
  await vhost?.remove();
  await issuer?.stop();
});

describe.each(PROTOCOLS)("over %s", (protocol) => {
  test("the issuer's token streams; so does the static one", async () => {
    expect((await take(stack.client(protocol, await mint(key, issuer.url)), 5, 1))[0]!.message).toBe("from the game");
    expect((await take(stack.client(protocol, "static-token"), 5, 1))[0]!.message).toBe("from the game");
  });

  test("an expired token, one for another audience, or none: UNAUTHENTICATED (loopback is no exception)", async () => {
    const expired = await mint(key, issuer.url, { exp: Math.floor(Date.now() / 1000) - 5 });
    const foreign = await mint(key, issuer.url, { aud: "another-api" });
    expect(await codeOf(take(stack.client(protocol, expired), 5, 1))).toBe(Code.Unauthenticated);
    expect(await codeOf(take(stack.client(protocol, foreign), 5, 1))).toBe(Code.Unauthenticated);
    expect(await codeOf(take(stack.client(protocol), 5, 1))).toBe(Code.Unauthenticated);
  });
});

test("the start says credentials are required and that the issuer's keys were loaded", async () => {
  await waitFor(() => stack.logs.some((l) => String(l.msg).startsWith("OIDC issuer reached")), 5000, "issuer line");
  const mode = stack.logs.find((l) => l.component === "log_access" && String(l.msg).startsWith("log access:"))!;
  expect(mode.mode).toBe("credentials");
  expect(String(mode.msg)).toContain("LOG_ACCESS_TOKEN or OIDC");
  expect(mode.oidc_issuer).toBe(issuer.url);
});
