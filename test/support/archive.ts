/**
 * The ManManV2 API's side of the log archive, for tests: its read queries
 * as UPSTREAM.md §5 gives them (GetHistoricalLogs' row query of CONTRACT §6
 * and GetLogHistogram's bucket query), run unmodified, and the objects
 * fetched by file_path as the API does (the S3 key is file_path minus
 * `s3://<bucket>/`; a directory store's `file://` path is read from disk)
 * and returned as their text. Plus a publisher of session log lines.
 */
import { readFile } from "node:fs/promises";
import { AMQPClient } from "@cloudamqp/amqp-client";
import type postgres from "postgres";
import { ARCHIVE_BINDING, ARCHIVE_EXCHANGE, ARCHIVE_QUEUE } from "../../src/amqp/archive-queue.ts";
import { parseLines, type ArchivedLine } from "../../src/logs/archive/format.ts";
import type { BrokerPeer } from "./processor.ts";
import { s3Request, type S3TestServer } from "./s3.ts";

export interface ApiRow {
  log_id: number;
  session_id: number;
  sgc_id: number;
  file_path: string;
  start_ms: number;
  end_ms: number;
  minute_ms: number;
  line_count: number;
  source: string;
  state: string;
  created_ms: number;
}

/** Where objects are read from: the directory store needs nothing; S3 needs the server and bucket. */
export interface ObjectSource {
  s3?: { server: S3TestServer; bucket: string };
}

/** Every log_references row of a session (any state), times as Unix ms. */
export async function rowsOf(sql: postgres.Sql, sessionId: number): Promise<ApiRow[]> {
  const rows = await sql`
    SELECT log_id, session_id, sgc_id, file_path, line_count, source, state,
           floor(extract(epoch FROM start_time) * 1000)::bigint AS start_ms,
           floor(extract(epoch FROM end_time) * 1000)::bigint AS end_ms,
           floor(extract(epoch FROM minute_timestamp) * 1000)::bigint AS minute_ms,
           floor(extract(epoch FROM created_at) * 1000)::bigint AS created_ms
    FROM log_references WHERE session_id = ${sessionId} ORDER BY log_id`;
  return rows.map((r) => ({
    log_id: Number(r.log_id), session_id: Number(r.session_id), sgc_id: Number(r.sgc_id), file_path: r.file_path as string,
    start_ms: Number(r.start_ms), end_ms: Number(r.end_ms), minute_ms: Number(r.minute_ms), line_count: Number(r.line_count),
    source: r.source as string, state: r.state as string, created_ms: Number(r.created_ms),
  }));
}

/** The object's gzip bytes, found by file_path as the API finds it; null when it is not there. */
export async function fetchObject(filePath: string, source: ObjectSource = {}): Promise<Uint8Array | null> {
  if (filePath.startsWith("file://")) return readFile(filePath.slice("file://".length)).then((b) => new Uint8Array(b), () => null);
  const s3 = source.s3;
  if (!s3) throw new Error(`no S3 server given for ${filePath}`);
  const prefix = `s3://${s3.bucket}/`;
  if (!filePath.startsWith(prefix)) throw new Error(`${filePath} is not in bucket ${s3.bucket}`);
  const key = filePath.slice(prefix.length);
  const res = await s3Request(s3.server, "GET", `/${s3.bucket}/${key.split("/").map(encodeURIComponent).join("/")}`);
  if (res.status === 404) return null;
  if (!res.ok) throw new Error(`GET ${filePath}: HTTP ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}

export async function objectText(filePath: string, source: ObjectSource = {}): Promise<string | null> {
  const bytes = await fetchObject(filePath, source);
  return bytes ? new TextDecoder().decode(Bun.gunzipSync(bytes as Uint8Array<ArrayBuffer>)) : null;
}

/**
 * GetHistoricalLogs as the API runs it (R/log_reference.go:194-204): the
 * complete rows overlapping [start, end] in start_time order, each object's
 * text as it is; here parsed back into lines so tests can compare them.
 */
export async function apiHistoricalLines(sql: postgres.Sql, sessionId: number, source: ObjectSource = {}, range = { startS: 0, endS: 253402300799 }): Promise<ArchivedLine[]> {
  const rows = await sql`
    SELECT log_id, session_id, file_path, start_time, end_time, line_count, source, minute_timestamp, created_at
    FROM log_references
    WHERE session_id = ${sessionId} AND start_time <= to_timestamp(${range.endS}) AT TIME ZONE 'UTC'
      AND end_time >= to_timestamp(${range.startS}) AT TIME ZONE 'UTC' AND state = 'complete'
    ORDER BY start_time ASC`;
  const lines: ArchivedLine[] = [];
  for (const r of rows) {
    const text = await objectText(r.file_path as string, source);
    if (text === null) throw new Error(`the API would fail: ${r.file_path} has a complete row and no object`);
    const parsed = parseLines(text);
    if (parsed.length !== Number(r.line_count)) throw new Error(`${r.file_path}: line_count ${r.line_count}, object has ${parsed.length}`);
    lines.push(...parsed);
  }
  return lines;
}

/** GetLogHistogram's query (R/log_reference.go:253-306): lines per bucket (Unix s) and source. */
export async function apiHistogram(sql: postgres.Sql, sessionId: number, bucketSeconds: number): Promise<Map<string, number>> {
  const rows = await sql`
    SELECT (EXTRACT(EPOCH FROM start_time)::bigint / ${bucketSeconds}) * ${bucketSeconds} AS bucket, source, SUM(line_count) AS lines
    FROM log_references
    WHERE session_id = ${sessionId} AND state = 'complete'
    GROUP BY bucket, source`;
  return new Map(rows.map((r) => [`${r.bucket}/${r.source}`, Number(r.lines)]));
}

/** Lines as published: `{session_id, timestamp, source, message}` on `logs.session.<id>`. */
export async function publishLines(peer: BrokerPeer, lines: readonly (ArchivedLine & { sessionId: number })[]): Promise<void> {
  // 200 confirms in flight at a time: fast, and the broker keeps them in order per channel anyway.
  for (let i = 0; i < lines.length; i += 200) {
    await Promise.all(
      lines.slice(i, i + 200).map((l) => peer.publish(`logs.session.${l.sessionId}`, { session_id: l.sessionId, timestamp: l.timestamp, source: l.source, message: l.message })),
    );
  }
}

/** `lines` as sorted keys, for comparing multisets. */
export function keys(lines: readonly ArchivedLine[]): string[] {
  return lines.map((l) => `${l.timestamp}|${l.source}|${l.message}`).sort();
}

/** Sum of line_count over a session's complete rows. */
export async function completeLines(sql: postgres.Sql, sessionIds: readonly number[]): Promise<number> {
  const [r] = await sql`SELECT coalesce(sum(line_count), 0)::int AS n FROM log_references WHERE session_id = ANY(${sessionIds as number[]}) AND state = 'complete'`;
  return Number(r!.n);
}

export type TestLine = ArchivedLine & { sessionId: number };

/** `perSession` lines for each session, `stepMs` apart from `startMs`, messages unique across the run. */
export function makeLines(sessionIds: readonly number[], perSession: number, startMs: number, stepMs: number, tag = "l"): TestLine[] {
  const out: TestLine[] = [];
  for (let i = 0; i < perSession; i++) {
    for (const id of sessionIds) out.push({ sessionId: id, timestamp: startMs + i * stepMs, source: i % 3 === 0 ? "stderr" : "stdout", message: `${tag} ${id}/${i}` });
  }
  return out;
}

/** Every line the API returns for these sessions (complete rows only), duplicates included. */
export async function apiLinesOf(sql: postgres.Sql, sessionIds: readonly number[], source: ObjectSource = {}): Promise<ArchivedLine[]> {
  const all: ArchivedLine[] = [];
  for (const id of sessionIds) all.push(...(await apiHistoricalLines(sql, id, source)));
  return all;
}

/**
 * The archive queue as the processor declares it (src/amqp/archive-queue.ts),
 * made before any processor runs, as on a live broker, so lines published
 * first are kept for it.
 */
export async function declareArchiveQueueFirst(url: string): Promise<void> {
  const client = new AMQPClient(url);
  await client.connect();
  try {
    const ch = await client.channel();
    await ch.exchangeDeclare(ARCHIVE_EXCHANGE, "topic", { durable: true });
    await ch.queueDeclare(ARCHIVE_QUEUE, { durable: true });
    await ch.queueBind(ARCHIVE_QUEUE, ARCHIVE_EXCHANGE, ARCHIVE_BINDING);
  } finally {
    await client.close();
  }
}

/** Messages ready and unacked in the archive queue (management-free: a passive declare counts ready ones only). */
export async function archiveQueueReady(url: string): Promise<number> {
  const client = new AMQPClient(url);
  await client.connect();
  try {
    const ch = await client.channel();
    return (await ch.queueDeclare(ARCHIVE_QUEUE, { passive: true })).messageCount;
  } finally {
    await client.close();
  }
}

/**
 * For tests that set S3_BUCKET for backups only: S3_BUCKET also sends the
 * log archive to S3, which needs keys. Port 9 (discard) refuses at once, so
 * the archive's start-up check fails fast (a warning) and nothing waits.
 */
export const UNUSED_ARCHIVE_S3 = { S3_ACCESS_KEY: "unused", S3_SECRET_KEY: "unused", S3_ENDPOINT: "http://127.0.0.1:9" } as const;
