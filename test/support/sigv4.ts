/**
 * An independent SigV4 check (node:crypto, written from AWS's description of
 * the algorithm, not from aws4fetch), and a gate that puts it in front of a
 * real S3 server. s3rver 3.7 checks only that a V4 request's access key
 * exists ("Signature version 4 calculation is unimplemented" in its
 * lib/middleware/authentication.js), so on its own it cannot prove that our
 * signatures are right; behind the gate a request with a wrong secret is
 * refused as S3 refuses it. The check itself is tested against AWS's
 * published example signature.
 */
import { createHash, createHmac } from "node:crypto";

export interface SignedRequest {
  method: string;
  /** As received: path and query still percent-encoded. */
  url: URL;
  headers: Headers;
  body: Uint8Array;
}

export type Verdict = { ok: true } | { ok: false; status: number; code: string; message: string };

const sha256 = (data: string | Uint8Array) => createHash("sha256").update(data).digest("hex");
const hmac = (key: string | Buffer, data: string) => createHmac("sha256", key).update(data).digest();
const rfc3986 = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

export function verifySigV4(req: SignedRequest, secrets: Record<string, string>, now = Date.now()): Verdict {
  const deny = (code: string, message: string, status = 403): Verdict => ({ ok: false, status, code, message });
  const auth = req.headers.get("authorization") ?? "";
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/.exec(auth);
  if (!m) return deny("AccessDenied", "no SigV4 Authorization header");
  const [, accessKey, day, region, service, signedHeaders, signature] = m;
  const secret = secrets[accessKey];
  if (secret === undefined) return deny("InvalidAccessKeyId", `unknown access key ${accessKey}`);
  const amzDate = req.headers.get("x-amz-date") ?? "";
  if (!amzDate.startsWith(day)) return deny("AccessDenied", "x-amz-date does not match the credential's day");
  const at = Date.parse(amzDate.replace(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/, "$1-$2-$3T$4:$5:$6Z"));
  // S3 refuses requests more than 15 minutes from its clock.
  if (!(Math.abs(now - at) <= 15 * 60_000)) return deny("RequestTimeTooSkewed", "x-amz-date is too far from now");
  const payloadHash = req.headers.get("x-amz-content-sha256") ?? "";
  if (!payloadHash) return deny("InvalidRequest", "missing x-amz-content-sha256", 400);
  if (payloadHash !== "UNSIGNED-PAYLOAD" && payloadHash !== sha256(req.body)) return deny("XAmzContentSHA256Mismatch", "body does not match x-amz-content-sha256", 400);

  const names = signedHeaders.split(";");
  if (!names.includes("host")) return deny("AccessDenied", "host is not signed");
  const canonicalHeaders = names.map((n) => `${n}:${(req.headers.get(n) ?? "").trim().replace(/ +/g, " ")}\n`).join("");
  const query = req.url.search
    .slice(1)
    .split("&")
    .filter(Boolean)
    .map((pair) => {
      const [k, v = ""] = pair.split("=");
      return [rfc3986(decodeURIComponent(k.replace(/\+/g, " "))), rfc3986(decodeURIComponent(v.replace(/\+/g, " ")))];
    })
    .sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join("&");
  // S3 signs the path as sent (encoded once), unlike other services.
  const canonicalRequest = [req.method, req.url.pathname || "/", query, canonicalHeaders, signedHeaders, payloadHash].join("\n");
  const scope = `${day}/${region}/${service}/aws4_request`;
  const stringToSign = ["AWS4-HMAC-SHA256", amzDate, scope, sha256(canonicalRequest)].join("\n");
  const key = hmac(hmac(hmac(hmac(`AWS4${secret}`, day), region), service), "aws4_request");
  const expected = createHmac("sha256", key).update(stringToSign).digest("hex");
  return expected === signature ? { ok: true } : deny("SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided.");
}

export interface SigV4Gate {
  /** http://127.0.0.1:<port>, to use as the S3 endpoint. */
  endpoint: string;
  /** Requests refused so far. */
  refused: number;
  stop(): Promise<void>;
}

/** A local endpoint that checks each request's signature, then passes it on to `upstream` unchanged. */
export function startSigV4Gate(upstream: string, secrets: Record<string, string>): SigV4Gate {
  const gate: SigV4Gate = { endpoint: "", refused: 0, stop: async () => void server.stop(true) };
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const url = new URL(req.url);
      const body = new Uint8Array(await req.arrayBuffer());
      const verdict = verifySigV4({ method: req.method, url, headers: req.headers, body }, secrets);
      if (!verdict.ok) {
        gate.refused++;
        const xml = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${verdict.code}</Code><Message>${verdict.message}</Message></Error>`;
        return new Response(req.method === "HEAD" ? null : xml, { status: verdict.status, headers: { "Content-Type": "application/xml" } });
      }
      const headers = new Headers(req.headers);
      headers.delete("host");
      headers.delete("content-length");
      const res = await fetch(upstream + url.pathname + url.search, {
        method: req.method,
        headers,
        body: body.length > 0 ? body : undefined,
        decompress: false,
      } as RequestInit);
      return new Response(res.body, { status: res.status, headers: res.headers });
    },
  });
  gate.endpoint = `http://127.0.0.1:${server.port}`;
  return gate;
}
