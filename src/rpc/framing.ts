/**
 * The byte framing every streaming protocol here shares (Connect, gRPC-Web
 * and gRPC alike): a message is a 5-byte prefix (flags, then the length,
 * big-endian) and its bytes. Plus the request deadline headers. Pure.
 */

/** Prefixes `bytes` with flags (0 = a message) and its length. */
export function envelop(bytes: Uint8Array, flags = 0): Uint8Array<ArrayBuffer> {
  const e = new Uint8Array(5 + bytes.length);
  e[0] = flags;
  new DataView(e.buffer).setUint32(1, bytes.length);
  e.set(bytes, 5);
  return e;
}

/** The payload of a request body that is exactly one uncompressed message; undefined otherwise. */
export function oneMessage(body: Uint8Array): Uint8Array | undefined {
  if (body.length < 5 || body[0] !== 0 || new DataView(body.buffer, body.byteOffset).getUint32(1) !== body.length - 5) return undefined;
  return body.subarray(5);
}

/** Concatenates encoded messages into one write. */
export function joinChunks(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  let size = 0;
  for (const p of parts) size += p.length;
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** gRPC's `grpc-timeout`: up to 8 digits and a unit (H M S m u n). */
export function grpcTimeoutMs(value: string | null | undefined): number | undefined {
  const m = /^(\d{1,8})([HMSmun])$/.exec(value ?? "");
  if (!m) return undefined;
  const unit = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 }[m[2] as "H"];
  return Number(m[1]) * unit;
}

/** Connect's `connect-timeout-ms`: up to 10 digits. */
export function connectTimeoutMs(value: string | null): number | undefined {
  return value !== null && /^\d{1,10}$/.test(value) ? Number(value) : undefined;
}
