/**
 * The hostile-client suites' target: the whole service as a subprocess
 * (`bun src/main.ts`, test/support/subprocess.ts) on its own vhost and
 * database, its RSS read from /proc, and two legitimate streams of one
 * session (gRPC on HTTP/2 and Connect on HTTP/1.1) from 127.0.0.2, another
 * client address than the attacks' 127.0.0.1, so the per-client cap the
 * attacks hit is not theirs. `healthy()` is what every case ends with: the
 * service is ready and both legitimate streams receive a fresh line.
 */
import { readFileSync } from "node:fs";
import { connect as h2connect, type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders, type OutgoingHttpHeaders } from "node:http2";
import { connect as tcp, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hostManager, type HostManager } from "../logs/support.ts";
import { createDatabase, createVhost, waitFor, type TestDatabase, type TestVhost } from "./services.ts";
import { spawnService, type ServiceProcess } from "./subprocess.ts";

export const TOKEN = "hostile-suite-token";
export const AUTH = `Bearer ${TOKEN}`;
export const STREAM_PATH = "/manman.v1.LogProcessor/StreamSessionLogs";
export const LEGIT_SESSION = 424_242;
export const LEGIT_ADDRESS = "127.0.0.2";

export interface Target {
  svc: ServiceProcess;
  httpPort: number;
  grpcPort: number;
  hm: HostManager;
  /** The service's resident memory now, in MB. */
  rssMb(): number;
  /** Samples RSS every 100 ms until the returned function is called; it returns the peak in MB. */
  watchRss(): () => number;
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  /** Ready, and both legitimate streams get a line published now (within 20 s). */
  healthy(): Promise<void>;
  stop(): Promise<void>;
}

export async function startTarget(prefix: string, env: Record<string, string> = {}): Promise<Target> {
  const [vhost, db] = await Promise.all([createVhost(prefix), createDatabase(prefix)]);
  const svc = spawnService({
    RABBITMQ_URL: vhost.url,
    DATABASE_URL: db.url,
    HEALTH_CHECK_PORT: "0",
    GRPC_PORT: "0",
    LOG_ACCESS_TOKEN: TOKEN,
    LOG_ARCHIVE_DIR: join(tmpdir(), `manman-hostile-${process.pid}-${prefix}`),
    ...env,
  });
  const httpPort = await Promise.race([svc.ready, svc.exited.then((c) => Promise.reject(new Error(`service exited ${c}: ${JSON.stringify(svc.lines.slice(-5))}`)))]);
  const grpcPort = Number(svc.lines.find((l) => l.msg === "manman-processor ready")!.grpc_port);
  const hm = await hostManager(vhost.url);
  const legit = await openLegitStreams(httpPort, grpcPort);
  const pid = svc.child.pid!;
  const rssMb = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) / 1024;
  let marker = 0;
  const watchers = new Set<ReturnType<typeof setInterval>>();
  return {
    svc,
    httpPort,
    grpcPort,
    hm,
    rssMb,
    watchRss() {
      let peak = rssMb();
      const sample = () => {
        try {
          peak = Math.max(peak, rssMb());
        } catch {
          peak = Infinity; // the process is gone: no bound holds
        }
      };
      const t = setInterval(sample, 100);
      watchers.add(t);
      return () => {
        clearInterval(t);
        watchers.delete(t);
        sample();
        // HOSTILE_RSS=1 prints each case's peak (docs/security.md quotes them).
        if (process.env.HOSTILE_RSS) console.log(`RSS peak ${peak.toFixed(1)} MB`);
        return peak;
      };
    },
    async metric(name, labels = {}) {
      const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
      const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
      const line = text.split("\n").find((l) => (l.startsWith(`${name} `) || l.startsWith(`${name}{`)) && want.every((w) => l.includes(w)));
      return line ? Number(line.slice(line.lastIndexOf(" ") + 1)) : 0;
    },
    async healthy() {
      const ready = await fetch(`http://127.0.0.1:${httpPort}/readyz`);
      if (ready.status !== 200) throw new Error(`not ready: ${await ready.text()}`);
      const text = `legit line ${++marker} ${Date.now()}`;
      await hm.line(LEGIT_SESSION, text);
      await waitFor(() => legit.grpc().includes(text) && legit.connect().includes(text), 20_000, `both legitimate streams to receive "${text}"`);
    },
    async stop() {
      for (const t of watchers) clearInterval(t);
      legit.close();
      await hm.close();
      svc.child.kill("SIGTERM");
      await Promise.race([svc.exited, Bun.sleep(10_000)]);
      if (svc.child.exitCode === null) svc.child.kill("SIGKILL");
      await Promise.all([vhost.remove(), db.remove()]);
    },
  };
}

/** Two streams of LEGIT_SESSION from LEGIT_ADDRESS; each returns what it received so far, as text. */
async function openLegitStreams(httpPort: number, grpcPort: number) {
  const conn = h2From(grpcPort, LEGIT_ADDRESS);
  const call = conn.request(grpcHeaders());
  let grpcText = "";
  call.on("data", (d: Buffer) => (grpcText = (grpcText + d.toString("latin1")).slice(-100_000)));
  call.on("error", () => {});
  call.end(envelope(streamRequest(LEGIT_SESSION)));
  const sock = await http1From(httpPort, LEGIT_ADDRESS);
  let connectText = "";
  sock.on("data", (d: Buffer) => (connectText = (connectText + d.toString("latin1")).slice(-100_000)));
  const body = envelope(new TextEncoder().encode(JSON.stringify({ sessionId: String(LEGIT_SESSION) })));
  sock.write(`POST ${STREAM_PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/connect+json\r\nAuthorization: ${AUTH}\r\nContent-Length: ${body.length}\r\n\r\n`);
  sock.write(body);
  return { grpc: () => grpcText, connect: () => connectText, close: () => (conn.destroy(), sock.destroy()) };
}

/** An HTTP/2 connection from `localAddress` (any 127.x address on Linux). */
export function h2From(port: number, localAddress = "127.0.0.1"): ClientHttp2Session {
  const c = h2connect(`http://127.0.0.1:${port}`, { createConnection: () => tcp({ host: "127.0.0.1", port, localAddress }) } as never);
  c.on("error", () => {});
  return c;
}

/** A raw TCP connection from `localAddress`, once connected. */
export function http1From(port: number, localAddress = "127.0.0.1"): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = tcp({ host: "127.0.0.1", port, localAddress }, () => resolve(s));
    s.once("error", reject);
  });
}

export function grpcHeaders(extra: OutgoingHttpHeaders = {}, path = STREAM_PATH): OutgoingHttpHeaders {
  return { ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers", authorization: AUTH, ...extra };
}

export interface H2Result {
  status?: number;
  grpcStatus?: string;
  grpcMessage?: string;
  /** Set when the stream was reset instead of answered. */
  rstCode?: number;
  data: string;
  ms: number;
}

/**
 * One request on `conn`; `body` is bytes, or a producer that writes the
 * body itself (for huge or stalled uploads). Resolves when the response
 * ends or the stream is reset, or after `timeoutMs` (then `ms` is -1).
 */
export function h2Call(conn: ClientHttp2Session, headers: OutgoingHttpHeaders, body: Uint8Array | ((req: ClientHttp2Stream) => void), timeoutMs = 30_000): Promise<H2Result> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const r: H2Result = { data: "", ms: -1 };
    const req = conn.request(headers);
    const pick = (h: IncomingHttpHeaders) => {
      if (h[":status"]) r.status = Number(h[":status"]);
      if (h["grpc-status"] !== undefined) r.grpcStatus = String(h["grpc-status"]);
      if (h["grpc-message"] !== undefined) r.grpcMessage = decodeURIComponent(String(h["grpc-message"]));
    };
    const timer = setTimeout(() => (req.close(), resolve(r)), timeoutMs);
    req.on("response", pick);
    req.on("trailers", pick);
    req.on("data", (d: Buffer) => (r.data = (r.data + d.toString("latin1")).slice(-10_000)));
    req.on("error", () => {});
    req.on("close", () => {
      clearTimeout(timer);
      if (req.rstCode && r.grpcStatus === undefined) r.rstCode = req.rstCode;
      r.ms = Date.now() - t0;
      resolve(r);
    });
    if (body instanceof Uint8Array) req.end(body);
    else body(req);
  });
}

/** Sends `mb` MiB of zeros on an HTTP/2 request as flow control lets it, until done or the stream closes; resolves with the bytes sent. */
export async function sendHuge(req: ClientHttp2Stream, mb: number, prefix?: Uint8Array): Promise<number> {
  const reader = hugeBody(mb, prefix).getReader();
  let sent = 0;
  for (;;) {
    const r = await reader.read();
    if (r.done || req.closed || req.destroyed) break;
    sent += r.value.length;
    if (!req.write(r.value)) await new Promise((ok) => (req.once("drain", ok), req.once("close", ok)));
  }
  if (!req.closed) req.end();
  return sent;
}

/** `mb` MiB of zeros (after `prefix`), generated chunk by chunk as read, never allocated whole. */
export function hugeBody(mb: number, prefix?: Uint8Array): ReadableStream<Uint8Array> {
  const chunk = new Uint8Array(64 * 1024);
  let left = mb * 16;
  let first = prefix;
  return new ReadableStream({
    pull(c) {
      if (first) return void (c.enqueue(first), (first = undefined));
      if (left-- <= 0) return c.close();
      c.enqueue(chunk);
    },
  });
}

/** The 5-byte prefix every streaming protocol here uses, then the bytes. */
export function envelope(bytes: Uint8Array, flags = 0, length = bytes.length): Uint8Array<ArrayBuffer> {
  const e = new Uint8Array(5 + bytes.length);
  e[0] = flags;
  new DataView(e.buffer).setUint32(1, length);
  e.set(bytes, 5);
  return e;
}

/** A StreamSessionLogsRequest as protobuf: field 1 (session_id) as a varint. */
export function streamRequest(sessionId: number): Uint8Array<ArrayBuffer> {
  const out = [0x08];
  let n = sessionId;
  while (n > 127) (out.push((n & 127) | 128), (n = Math.floor(n / 128)));
  out.push(n);
  return new Uint8Array(out);
}

/** Sends a raw HTTP/1.1 request from 127.0.0.1 and resolves with everything received until the server closes or `idleMs` passes quietly. */
export async function http1Exchange(port: number, head: string, body: Uint8Array = new Uint8Array(), idleMs = 1500): Promise<string> {
  const s = await http1From(port);
  return new Promise((resolve) => {
    let got = "";
    let timer = setTimeout(() => s.destroy(), 20_000);
    s.on("data", (d: Buffer) => {
      got += d.toString("latin1");
      clearTimeout(timer);
      timer = setTimeout(() => s.destroy(), idleMs);
    });
    s.on("close", () => (clearTimeout(timer), resolve(got)));
    s.on("error", () => {});
    s.write(head);
    if (body.length) s.write(body);
  });
}

export { waitFor, type TestDatabase, type TestVhost };
