/**
 * The viewers of `bench:logs` (bench/logs.ts): a child process holding many
 * StreamSessionLogs streams, so that thousands of them are not measured
 * through one event loop that also publishes, and so that what the client
 * side costs (its CPU) is its own and can be printed.
 *
 *   bun bench/logs-clients.ts <grpc|connect> <port> <count> <first session id> <sessions> <offset>
 *
 * Stream i watches session `first + (offset + i) % sessions`. gRPC: a lean
 * client (node:http2 and hand-parsed envelopes; connect-node's client costs
 * as much per message as the server and would measure itself), 100 streams
 * per connection as separate gRPC clients would spread. Connect: binary
 * Connect over HTTP/1.1 with fetch, one connection per stream, as browsers.
 *
 * Each line's message is its publish time (ms since the epoch, fractional);
 * the arrival time minus it goes into a histogram of 0.1 ms buckets. On
 * stdin: `report` prints {open, delivered, ended, endedBy, perStream, hist:
 * [[bucket, n]...]} and starts a new histogram; `mark` starts the per-stream
 * counts afresh (the parent marks the start of a delivery phase); `stop`
 * exits. Prints {open} once every stream has its response headers.
 *
 * Why a stream ended is kept, so that missing messages can be told apart:
 * a gRPC status the server sent (RESOURCE_EXHAUSTED = it fell behind, by
 * design), a reset stream, or the connection going (`connection: …`).
 */
import { connect as h2connect, type ClientHttp2Session } from "node:http2";
import { createInterface } from "node:readline";

const now = () => performance.timeOrigin + performance.now();
const BUCKETS = 600_000; // 0.1 ms up to 60 s
const STREAMS_PER_CONNECTION = 100;

/** The parent's handle on one client child. */
export interface Clients {
  readonly pid: number;
  /** Resolves once every stream has its response headers. */
  readonly opened: Promise<void>;
  report(): Promise<Report>;
  /** Starts the per-stream counts afresh. */
  mark(): Promise<void>;
  stop(): Promise<void>;
}

export interface Report {
  open: number;
  delivered: number;
  /** Streams ended so far (since the start, not the report). */
  ended: number;
  /** Why they ended: `grpc-status 8 (…message…)`, `rst <code>`, `connection: <error>`, … → streams. */
  endedBy: Record<string, number>;
  /** Since the last `mark`: messages a stream got → how many streams got that many. */
  perStream: [number, number][];
  hist: [number, number][];
}

export function spawnClients(protocol: "grpc" | "connect", port: number, count: number, first: number, sessions: number, offset: number): Clients {
  const proc = Bun.spawn([process.execPath, import.meta.path, protocol, String(port), String(count), String(first), String(sessions), String(offset)], {
    stdin: "pipe",
    stdout: "pipe",
    stderr: "inherit",
    // Bun's fetch opens at most 256 connections at once by default; one per Connect stream here.
    env: { ...process.env, BUN_CONFIG_MAX_HTTP_REQUESTS: String(Math.min(65_000, count + 100)) },
  });
  const replies: ((line: string) => void)[] = [];
  void (async () => {
    let buf = "";
    const reader = proc.stdout.getReader();
    for (let r = await reader.read(); !r.done; r = await reader.read()) {
      buf += new TextDecoder().decode(r.value);
      let i: number;
      while ((i = buf.indexOf("\n")) >= 0) {
        replies.shift()?.(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    }
  })();
  const next = () => new Promise<string>((resolve) => replies.push(resolve));
  return {
    pid: proc.pid,
    opened: next().then(() => {}),
    async report() {
      const reply = next();
      proc.stdin.write("report\n");
      await proc.stdin.flush();
      return JSON.parse(await reply) as Report;
    },
    async mark() {
      proc.stdin.write("mark\n");
      await proc.stdin.flush();
    },
    async stop() {
      proc.stdin.write("stop\n");
      await proc.stdin.flush();
      const killer = setTimeout(() => proc.kill("SIGKILL"), 3000);
      await proc.exited;
      clearTimeout(killer);
    },
  };
}

/** Merges histograms and reads percentiles off them (ms). */
export function percentiles(reports: Report[], ps: number[]): number[] {
  const all = new Map<number, number>();
  for (const r of reports) for (const [b, n] of r.hist) all.set(b, (all.get(b) ?? 0) + n);
  const sorted = [...all].sort((a, b) => a[0] - b[0]);
  const total = sorted.reduce((s, [, n]) => s + n, 0);
  return ps.map((p) => {
    const want = Math.ceil((p / 100) * total);
    let seen = 0;
    for (const [b, n] of sorted) if ((seen += n) >= want) return b / 10;
    return NaN;
  });
}

if (import.meta.main) await child();

async function child(): Promise<void> {
  const [protocol, port, count, first, sessions, offset] = [process.argv[2], ...process.argv.slice(3).map(Number)] as [string, number, number, number, number, number];
  let hist = new Uint32Array(BUCKETS);
  let delivered = 0;
  let open = 0;
  let ended = 0;
  const endedBy: Record<string, number> = {};
  let perStream = new Uint32Array(count);
  const onMessage = (stream: number, published: number) => {
    const b = Math.min(BUCKETS - 1, Math.max(0, Math.round((now() - published) * 10)));
    hist[b]++;
    delivered++;
    perStream[stream]++;
  };
  const onOpen = () => ++open === count && process.stdout.write(JSON.stringify({ open }) + "\n");
  const onEnd = (why: string) => {
    ended++;
    endedBy[why] = (endedBy[why] ?? 0) + 1;
  };
  const connections: ClientHttp2Session[] = [];
  const connectionErrors = new Map<ClientHttp2Session, string>();
  for (let i = 0; i < count; i++) {
    const session = first + ((offset + i) % sessions);
    if (protocol === "grpc") {
      if (i % STREAMS_PER_CONNECTION === 0) {
        const c = h2connect(`http://127.0.0.1:${port}`);
        // Once per connection (not per stream: 100 listeners), so a stream closed with it can say why.
        c.once("error", (err: Error) => connectionErrors.set(c, `connection: ${err.message.slice(0, 60)}`));
        c.once("goaway", (code: number) => connectionErrors.has(c) || connectionErrors.set(c, `connection: GOAWAY ${code}`));
        connections.push(c);
      }
      const c = connections[connections.length - 1]!;
      grpcStream(c, session, onOpen, (p) => onMessage(i, p), (why) => onEnd(why ?? connectionErrors.get(c) ?? (c.destroyed || c.closed ? "connection closed" : "stream closed")));
    } else {
      void connectStream(port, session, onOpen, (p) => onMessage(i, p)).then(onEnd);
    }
    // Let the server take each batch of requests in before the next.
    if (i % 200 === 199) await Bun.sleep(20);
  }
  for await (const line of createInterface({ input: process.stdin })) {
    if (line === "stop") process.exit(0);
    if (line === "mark") {
      perStream = new Uint32Array(count);
      continue;
    }
    const out: [number, number][] = [];
    for (let b = 0; b < BUCKETS; b++) if (hist[b]) out.push([b, hist[b]!]);
    const counts = new Map<number, number>();
    for (const n of perStream) counts.set(n, (counts.get(n) ?? 0) + 1);
    process.stdout.write(JSON.stringify({ open, delivered, ended, endedBy, perStream: [...counts], hist: out } satisfies Report) + "\n");
    hist = new Uint32Array(BUCKETS);
    delivered = 0;
  }
}

/** The request: one StreamSessionLogsRequest {session_id} in an envelope. */
function requestFrame(sessionId: number): Uint8Array<ArrayBuffer> {
  const body = [0x08, ...varint(sessionId)];
  const frame = new Uint8Array(5 + body.length);
  new DataView(frame.buffer).setUint32(1, body.length);
  frame.set(body, 5);
  return frame;
}

function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return out;
}

/** Splits envelopes out of a byte stream; calls back with each data message's `message` field (4) as a number. */
function envelopeReader(onMessage: (published: number) => void): (chunk: Uint8Array) => void {
  let pending = new Uint8Array(0);
  const text = new TextDecoder();
  return (chunk) => {
    let all = chunk;
    if (pending.length > 0) {
      all = new Uint8Array(pending.length + chunk.length);
      all.set(pending);
      all.set(chunk, pending.length);
    }
    let at = 0;
    while (all.length - at >= 5) {
      const len = new DataView(all.buffer, all.byteOffset + at + 1, 4).getUint32(0);
      if (all.length - at - 5 < len) break;
      if ((all[at]! & 0x02) === 0) {
        const m = field4(all.subarray(at + 5, at + 5 + len));
        if (m) onMessage(Number(text.decode(m)));
      }
      at += 5 + len;
    }
    pending = all.slice(at);
  };
}

/** The bytes of field 4 (a string) of a LogMessage, skipping the others. */
function field4(msg: Uint8Array): Uint8Array | undefined {
  let i = 0;
  const readVarint = () => {
    let v = 0;
    let mul = 1;
    for (;;) {
      const b = msg[i++]!;
      v += (b & 0x7f) * mul;
      if (b < 0x80) return v;
      mul *= 0x80;
    }
  };
  while (i < msg.length) {
    const key = readVarint();
    if ((key & 7) === 0) readVarint();
    else {
      const len = readVarint();
      if (key >> 3 === 4) return msg.subarray(i, i + len);
      i += len;
    }
  }
  return undefined;
}

/** `onEnd` gets the stream's status or reset code, or undefined when it closed with its connection. */
function grpcStream(session: ClientHttp2Session, sessionId: number, onOpen: () => void, onMessage: (p: number) => void, onEnd: (why: string | undefined) => void): void {
  const req = session.request({ ":method": "POST", ":path": "/manman.v1.LogProcessor/StreamSessionLogs", "content-type": "application/grpc", te: "trailers" });
  req.end(requestFrame(sessionId));
  req.once("response", onOpen);
  req.on("data", envelopeReader(onMessage));
  let why: string | undefined;
  req.once("trailers", (t) => (why = `grpc-status ${String(t["grpc-status"])}${t["grpc-message"] ? ` (${decodeURIComponent(String(t["grpc-message"])).slice(0, 60)})` : ""}`));
  req.on("error", (err: Error) => (why ??= `error: ${err.message.slice(0, 60)}`));
  req.once("close", () => onEnd(why ?? (session.destroyed || session.closed ? undefined : `rst ${req.rstCode}`)));
}

/** Resolves with why the stream ended. */
async function connectStream(port: number, sessionId: number, onOpen: () => void, onMessage: (p: number) => void): Promise<string> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/manman.v1.LogProcessor/StreamSessionLogs`, {
      method: "POST",
      headers: { "content-type": "application/connect+proto", "connect-protocol-version": "1" },
      body: requestFrame(sessionId) as Uint8Array<ArrayBuffer>,
    });
    onOpen();
    const read = envelopeReader(onMessage);
    const reader = res.body!.getReader();
    for (let r = await reader.read(); !r.done; r = await reader.read()) read(r.value);
    return "ended";
  } catch (err) {
    return `error: ${(err as Error).message.slice(0, 60)}`;
  }
}
