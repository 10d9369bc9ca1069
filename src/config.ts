/**
 * Environment → typed Config. The one place where defaults live.
 *
 * Every setting is one row of SETTINGS: its environment name, its default as
 * an operator would write it, a one-line meaning and a valibot schema. The
 * same table drives validation, `--help` and README, so they cannot drift.
 * Names from CONTRACT §7 keep the deployed services' meaning.
 *
 * An empty or whitespace-only value means unset, for every variable: the
 * deployed manifests write `S3_ENDPOINT: ""` for "none", and a templated
 * manifest easily renders an unset value as "". The default applies then.
 */
import * as v from "valibot";

type Schema = v.GenericSchema<string, unknown>;
interface Setting {
  readonly env: string;
  /** Undefined = unset by default. */
  readonly default?: string;
  readonly help: string;
  readonly schema: Schema;
  /** Hidden from --help output values (passwords). */
  readonly secret?: boolean;
}

const int = (min: number, max: number) =>
  v.pipe(
    v.string(),
    v.trim(),
    v.regex(/^-?\d+$/, "must be a whole number"),
    v.transform(Number),
    v.minValue(min, `must be at least ${min}`),
    v.maxValue(max, `must be at most ${max}`),
  );
const bool = v.pipe(
  v.string(),
  v.trim(),
  v.toLowerCase(),
  v.picklist(["true", "false", "1", "0", "yes", "no"], "must be true or false"),
  v.transform((s) => s === "true" || s === "1" || s === "yes"),
);
const text = v.pipe(v.string(), v.trim());
const nonEmpty = v.pipe(text, v.minLength(1, "must not be empty"));
const urlWith = (schemes: string[]) =>
  v.pipe(
    text,
    v.url("must be a URL"),
    v.check(
      (s) => schemes.includes(new URL(s).protocol),
      `must start with ${schemes.map((p) => p + "//").join(" or ")}`,
    ),
  );
// Port 0 lets the OS choose (tests run many processes side by side).
const port = int(0, 65535);
const list = v.pipe(
  v.string(),
  v.transform((s) => s.split(",").map((t) => t.trim()).filter((t) => t.length > 0)),
);

export const SETTINGS = {
  rabbitmqUrl: { env: "RABBITMQ_URL", default: "amqp://guest:guest@localhost:5672/", help: "AMQP URL; its path is the vhost; amqps:// connects with TLS", schema: urlWith(["amqp:", "amqps:"]), secret: true },
  // The three TLS settings keep the meaning of upstream's libs/go/rmq
  // (connection.go, TLS_CONFIGURATION.md); they only apply to amqps:// URLs.
  rabbitmqSslVerify: { env: "RABBITMQ_SSL_VERIFY", default: "true", help: "amqps: check the broker's certificate chain and name; false = accept any certificate (development only)", schema: bool },
  rabbitmqCaCertPath: { env: "RABBITMQ_CA_CERT_PATH", help: "amqps: PEM file of the CA(s) to trust instead of the system's; unreadable = startup error", schema: text },
  rabbitmqTlsServerName: { env: "RABBITMQ_TLS_SERVER_NAME", help: "amqps: name sent as SNI and checked against the certificate, instead of the URL's host", schema: text },
  databaseUrl: { env: "DATABASE_URL", help: "postgres:// URL; wins over PG_DATABASE_URL and the DB_* parts", schema: urlWith(["postgres:", "postgresql:"]), secret: true },
  pgDatabaseUrl: { env: "PG_DATABASE_URL", help: "postgres:// URL (the log-processor's name); wins over the DB_* parts", schema: urlWith(["postgres:", "postgresql:"]), secret: true },
  dbHost: { env: "DB_HOST", default: "localhost", help: "PostgreSQL host", schema: nonEmpty },
  dbPort: { env: "DB_PORT", default: "5432", help: "PostgreSQL port", schema: int(1, 65535) },
  dbUser: { env: "DB_USER", default: "postgres", help: "PostgreSQL user", schema: nonEmpty },
  dbPassword: { env: "DB_PASSWORD", default: "", help: "PostgreSQL password", schema: v.string(), secret: true },
  dbName: { env: "DB_NAME", default: "manman", help: "PostgreSQL database", schema: nonEmpty },
  dbSslMode: { env: "DB_SSL_MODE", default: "disable", help: "disable, allow, prefer, require, verify-ca or verify-full", schema: v.picklist(["disable", "allow", "prefer", "require", "verify-ca", "verify-full"], "must be one of disable, allow, prefer, require, verify-ca, verify-full") },
  // 10 connections: two cores cannot use more in parallel, and it leaves room
  // on a shared ManManV2 database (PostgreSQL's default max_connections is 100).
  dbPoolMax: { env: "DB_POOL_MAX", default: "10", help: "most database connections this process opens", schema: int(1, 1000) },
  // 5 s: every statement here touches one or a few rows by key; anything
  // slower is a stuck lock or an outage, better retried than waited on.
  dbStatementTimeoutMs: { env: "DB_STATEMENT_TIMEOUT_MS", default: "5000", help: "server-side statement_timeout for every query, ms", schema: int(100, 600_000) },
  queueName: { env: "QUEUE_NAME", default: "processor-events", help: "event queue (its dead-letter queue is <name>-dlq)", schema: nonEmpty },
  queueType: { env: "QUEUE_TYPE", default: "classic", help: "type when the event queue is created: classic (as deployed) or quorum", schema: v.picklist(["classic", "quorum"], "must be classic or quorum") },
  externalExchange: { env: "EXTERNAL_EXCHANGE", default: "external", help: "topic exchange for derived events", schema: nonEmpty },
  // 1024: the window bounds the rate (a message waits for its group's statement
  // and commit; a bigger window makes bigger groups, fewer transactions):
  // bench:events on 2 cores, 256 -> ~10,500 events/s, 1024 -> ~18,000, 2048
  // no faster and more single acks (docs/performance.md). A drain on SIGTERM
  // still finishes well within 30 s (1,024 messages at that rate: ~0.1 s).
  // Its memory cost is the maxMessageBytes bound below.
  prefetch: { env: "PREFETCH", default: "1024", help: "unacked event messages in flight (1 = the deployed services' design)", schema: int(1, 65535) },
  maxRetries: { env: "MAX_RETRIES", default: "5", help: "attempts after a message's own transient failure before it is dead-lettered", schema: int(0, 100) },
  // 5 s: a message that overtook its predecessor (another replica, a
  // requeue) is normally followed by it within milliseconds; five seconds
  // covers a busy broker while keeping the session's later messages moving.
  forwardSkipRetrySeconds: { env: "FORWARD_SKIP_RETRY_SECONDS", default: "5", help: "how long a pending -> running message is retried, waiting for its predecessor, before it is dead-lettered", schema: int(0, 600) },
  // 168 h = one week: long enough to notice and replay over a holiday,
  // short enough that a forgotten DLQ empties itself.
  dlqMaxAgeHours: { env: "DLQ_MAX_AGE_HOURS", default: "168", help: "dead-lettered copies expire after this many hours", schema: int(1, 24 * 365) },
  // 100,000: a week of one bad host's 5 s messages is ~120,000; at ~1 KB a
  // message that is ~100 MB of broker memory or disk, bounded.
  dlqMaxMessages: { env: "DLQ_MAX_MESSAGES", default: "100000", help: "when the dead-letter queue holds this many, further dead letters are dropped (counted, logged)", schema: int(1, 100_000_000) },
  // 64 KiB: the largest real message (a heartbeat) is under 200 bytes; with
  // PREFETCH 1024 in flight, 1024 × 64 KiB = 64 MiB is the most raw bodies can
  // pin, inside the container's 384 MiB limit with the rest of the bound
  // (docs/security.md; 1 MiB would have allowed 1 GiB).
  maxMessageBytes: { env: "MAX_MESSAGE_BYTES", default: "65536", help: "larger event bodies are dead-lettered unparsed", schema: int(64, 128 * 1024 * 1024) },
  logLevel: { env: "LOG_LEVEL", default: "info", help: "debug, info, warn or error", schema: v.pipe(text, v.toLowerCase(), v.picklist(["debug", "info", "warn", "error"], "must be debug, info, warn or error")) },
  healthCheckPort: { env: "HEALTH_CHECK_PORT", default: "8080", help: "HTTP port: health, readiness, Connect/gRPC-Web, viewer", schema: port },
  grpcPort: { env: "GRPC_PORT", default: "50053", help: "native gRPC (HTTP/2 cleartext) port", schema: port },
  staleHostThresholdSeconds: { env: "STALE_HOST_THRESHOLD_SECONDS", default: "10", help: "an online host silent this long goes offline", schema: int(1, 86_400) },
  staleSessionThresholdSeconds: { env: "STALE_SESSION_THRESHOLD_SECONDS", default: "30", help: "a pending/starting/stopping session unchanged this long becomes lost", schema: int(1, 86_400 * 7) },
  // 1 s: a silent host or stuck session is caught at most one interval past
  // its threshold (threshold + 1 s at the default); each sweep is one
  // indexed UPDATE, cheap enough to run every second.
  staleCheckIntervalSeconds: { env: "STALE_CHECK_INTERVAL_SECONDS", default: "1", help: "how often the stale sweeps run", schema: int(1, 3600) },
  // 5 s: a deploy, drain or crash pauses event processing for about as long
  // as a host manager's keepalive period (5 s), so a session downloading
  // addons misses at most one keepalive and no stale threshold (10 s hosts,
  // 30 s sessions) is reached by the failover alone. The intervals that make
  // it up (standby check, AMQP heartbeat, database give-up) are derived
  // from it in event-pipeline/role-timings.ts. At least 4: the heartbeat
  // can't go below 1 s, and the broker gives a silent holder up 2-3
  // heartbeats after its last frame.
  failoverSeconds: { env: "FAILOVER_SECONDS", default: "5", help: "a standby replica takes over event processing within this many seconds of the active one's death", schema: int(4, 600) },
  podName: { env: "POD_NAME", help: "this replica's name in /status and its role log lines; unset = the host name (a pod's name in Kubernetes)", schema: text },
  shutdownTimeoutSeconds: { env: "SHUTDOWN_TIMEOUT_SECONDS", default: "30", help: "longest graceful drain on SIGTERM before connections are closed", schema: int(1, 3600) },
  logBufferTtl: { env: "LOG_BUFFER_TTL", default: "180", help: "seconds a session's log buffer is kept after its last line", schema: int(1, 86_400) },
  logBufferMaxMessages: { env: "LOG_BUFFER_MAX_MESSAGES", default: "500", help: "lines kept per session", schema: int(1, 1_000_000) },
  // 64 KiB: a few screens of text; longer single lines are stack dumps or
  // binary noise, and 500 of them per session still fit in memory.
  logLineMaxBytes: { env: "LOG_LINE_MAX_BYTES", default: "65536", help: "longer log lines are truncated with a marker", schema: int(256, 16 * 1024 * 1024) },
  debugLogOutput: { env: "DEBUG_LOG_OUTPUT", default: "false", help: "echo every session log line to stdout", schema: bool },
  // 32 MiB: the full default buffer of ~220 sessions of 100-character lines
  // (500 lines each, ~300 bytes per line as estimated). Measured on Bun 1.4:
  // a full 32 MiB buffer is ~27-31 MB of heap, and the process (~60 MB idle)
  // with 1,000 open streams stays under a 150 MB container limit.
  logBufferMaxBytes: { env: "LOG_BUFFER_MAX_BYTES", default: "33554432", help: "estimated bytes all session log buffers, and the lines slow streams still hold, may take together; the least recently written sessions lose their oldest lines first", schema: int(1024 * 1024, 64 * 1024 * 1024 * 1024) },
  // 4 MiB: a burst of ~25,000 ordinary lines (a game server starting up)
  // may wait for a slow client; a client further behind than that is told
  // RESOURCE_EXHAUSTED and resumes, so 1,000 open streams cost at most a
  // few MB each even when their clients stall (lines are shared, not copied).
  logStreamMaxPendingBytes: { env: "LOG_STREAM_MAX_PENDING_BYTES", default: "4194304", help: "estimated bytes of log lines one stream may have waiting to be sent before it is ended with RESOURCE_EXHAUSTED", schema: int(64 * 1024, 1024 * 1024 * 1024) },
  // 2,000: twice the 1,000 streams benchmarked (docs/logs.md: p99 4-10 ms,
  // ~20% of a core). An open stream costs ~20 KB settled (1,000 waiting
  // gRPC streams added 17 MB of RSS) and up to ~50 KB while a flood is
  // refused beside it (2,000 open among 10,000 tries peaked at 160 MB), so
  // 2,000 add at most ~100 MB to the ~65 MB idle process and
  // LOG_BUFFER_MAX_BYTES: well inside the 384 MiB container limit.
  logStreamsMax: { env: "LOG_STREAMS_MAX", default: "2000", help: "open log streams this process serves at most, all clients together; more are refused with RESOURCE_EXHAUSTED", schema: int(1, 1_000_000) },
  // 500: a quarter of LOG_STREAMS_MAX, so one address (a hostile client)
  // leaves three quarters to the others, while the ManManV2 UI, which
  // streams every viewer's logs from its own address, still carries 500
  // viewers. Behind a proxy every client has the proxy's address: raise it
  // to LOG_STREAMS_MAX there.
  logStreamsPerClientMax: { env: "LOG_STREAMS_PER_CLIENT_MAX", default: "500", help: "open log streams one client address (IPv6: one /64) may hold; more are refused with RESOURCE_EXHAUSTED", schema: int(1, 1_000_000) },
  // 100,000 lines: two seconds of the 50,000 lines/s this process ingests,
  // enough to ride out a pause (GC, CPU contention) without loss, and ~30 MB
  // of broker memory per replica at worst; older lines are dropped first.
  logQueueMaxLength: { env: "LOG_QUEUE_MAX_LENGTH", default: "100000", help: "log lines the broker holds for this process when it falls behind (oldest dropped first)", schema: int(100, 100_000_000) },
  logAccessTokens: { env: "LOG_ACCESS_TOKEN", help: "bearer token(s), comma-separated, one of which every log, history and session-list call must send (or an OIDC token, GRPC_AUTH_MODE)", schema: list, secret: true },
  // protected: with no credentials, serve only this machine (Redis's
  // protected mode), so a deployment nobody configured is not an open log
  // reader; opening it takes a deliberate LOG_ACCESS=open.
  logAccess: { env: "LOG_ACCESS", default: "protected", help: "without LOG_ACCESS_TOKEN or OIDC: protected = only clients on this machine (loopback) are served; open = anyone who reaches a port", schema: v.pipe(text, v.toLowerCase(), v.picklist(["protected", "open"], "must be protected or open")) },
  // The deployed log-processor's names and values (libs/go/grpcauth).
  grpcAuthMode: { env: "GRPC_AUTH_MODE", default: "none", help: "oidc = accept bearer JWTs from GRPC_OIDC_ISSUER for GRPC_OIDC_CLIENT_ID (besides LOG_ACCESS_TOKEN); none = no OIDC", schema: v.pipe(text, v.toLowerCase(), v.picklist(["none", "oidc"], "must be none or oidc")) },
  grpcOidcIssuer: { env: "GRPC_OIDC_ISSUER", help: "OIDC issuer URL, exactly as tokens' iss (e.g. https://auth.example.com/realms/manman); keys from its discovery document", schema: urlWith(["https:", "http:"]) },
  grpcOidcClientId: { env: "GRPC_OIDC_CLIENT_ID", help: "the audience (aud) an OIDC token must name", schema: text },
  corsOrigins: { env: "CORS_ORIGINS", help: "web origins (scheme://host[:port]), comma-separated, whose pages may call the RPCs from a browser; unset = no CORS headers (the viewer is same-origin)", schema: v.pipe(list, v.check((os) => os.every(isOrigin), "must be origins like https://ui.example.com, comma-separated"), v.transform((os) => os.map((o) => new URL(o).origin))) },
  metricsPort: { env: "METRICS_PORT", help: "serve /metrics and /status on this port instead of HEALTH_CHECK_PORT; unset = on HEALTH_CHECK_PORT", schema: port },
  // All interfaces: Prometheus scrapes the pod from another pod; keep the
  // port out of the Service (deploy/) or set 127.0.0.1 for a sidecar.
  metricsHost: { env: "METRICS_HOST", default: "0.0.0.0", help: "address METRICS_PORT listens on", schema: nonEmpty },
  logArchiveDir: { env: "LOG_ARCHIVE_DIR", default: "./data/log-archive", help: "directory of the log archive when S3_BUCKET is unset (the container sets /var/lib/manman-processor/log-archive)", schema: nonEmpty },
  // 15 s after a minute ends: the host flushes its buffer every second and
  // publishes with a 2 s timeout, so a minute's lines are in by then; later
  // ones still go to a new part, never lost.
  logArchiveGraceSeconds: { env: "LOG_ARCHIVE_GRACE_SECONDS", default: "15", help: "seconds after a minute ends before its archive object is written", schema: int(0, 3600) },
  // 20,000 lines: ~4-6 MB of ordinary lines held in memory and unacked on
  // the broker; past it the fullest minutes are written early as parts.
  logArchiveMaxPendingLines: { env: "LOG_ARCHIVE_MAX_PENDING_LINES", default: "20000", help: "log lines held unarchived (and unacked) at most; past it minutes are written early as extra parts", schema: int(100, 1_000_000) },
  logArchiveRetentionDays: { env: "LOG_ARCHIVE_RETENTION_DAYS", help: "archived objects and their rows older than this many days are removed; unset = kept for ever", schema: int(1, 36_500) },
  s3Bucket: { env: "S3_BUCKET", help: "bucket of backups and of the log archive (set: the archive goes to S3); completes the bucket-less s3_url real hosts report for a backup", schema: text },
  s3Region: { env: "S3_REGION", help: "S3 region, for request signing (us-east-1 when unset)", schema: text },
  s3Endpoint: { env: "S3_ENDPOINT", help: "S3-compatible endpoint URL, addressed path-style; unset = AWS", schema: text },
  s3PublicEndpoint: { env: "S3_PUBLIC_ENDPOINT", help: "S3 endpoint as hosts reach it: backup upload URLs are signed for it; unset = S3_ENDPOINT", schema: text },
  s3AccessKey: { env: "S3_ACCESS_KEY", help: "S3 access key", schema: text, secret: true },
  s3SecretKey: { env: "S3_SECRET_KEY", help: "S3 secret key", schema: text, secret: true },
  // 60 s: upstream's scan period (River's backup_scan, every minute);
  // cadences are whole minutes, so a backup starts at most one interval
  // after it falls due. Each scan is one indexed query when nothing is due.
  backupScanIntervalSeconds: { env: "BACKUP_SCAN_INTERVAL_SECONDS", default: "60", help: "how often due backups are looked for (one replica scans at a time) and stale ones failed", schema: int(1, 3600) },
  // 2 h: a command and its upload URL live 1 h (the host drops an older
  // command), and an upload the host started within that hour gets another
  // hour to finish; a backup with no status by then will never get one.
  backupStaleHours: { env: "BACKUP_STALE_HOURS", default: "2", help: "a backup pending or running this many hours after its creation is marked failed", schema: int(1, 24 * 30) },
} as const satisfies Record<string, Setting>;

type Settings = typeof SETTINGS;
type Value<K extends keyof Settings> = v.InferOutput<Settings[K]["schema"]>;
type WithDefault = { [K in keyof Settings]: Settings[K] extends { default: string } ? K : never }[keyof Settings];
export type Config = { [K in WithDefault]: Value<K> } & {
  [K in Exclude<keyof Settings, WithDefault>]?: Value<K>;
} & {
  /** The connection URL actually used: DATABASE_URL, else PG_DATABASE_URL, else one built from DB_*. */
  readonly postgresUrl: string;
};

export type ConfigResult =
  | { ok: true; config: Config }
  | { ok: false; problems: string[] };

/** Reads every setting; collects every problem instead of stopping at the first. */
export function loadConfig(env: Record<string, string | undefined>): ConfigResult {
  const out: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [key, setting] of Object.entries(SETTINGS) as [string, Setting][]) {
    const given = env[setting.env];
    const raw = given === undefined || given.trim() === "" ? setting.default : given;
    if (raw === undefined) continue;
    const result = v.safeParse(setting.schema, raw);
    if (result.success) out[key] = result.output;
    else {
      const shown = setting.secret ? "(hidden)" : JSON.stringify(raw);
      problems.push(`${setting.env}=${shown}: ${result.issues.map((i) => i.message).join("; ")}`);
    }
  }
  if (problems.length === 0) problems.push(...crossChecks(out as Omit<Config, "postgresUrl">));
  if (problems.length > 0) return { ok: false, problems };
  const c = out as Omit<Config, "postgresUrl">;
  return { ok: true, config: { ...c, postgresUrl: c.databaseUrl ?? c.pgDatabaseUrl ?? postgresUrlFromParts(c) } as Config };
}

/** Problems no single setting shows. */
function crossChecks(c: Omit<Config, "postgresUrl">): string[] {
  const problems: string[] = [];
  if (c.grpcAuthMode === "oidc" && (!c.grpcOidcIssuer || !c.grpcOidcClientId)) {
    problems.push("GRPC_AUTH_MODE=oidc needs GRPC_OIDC_ISSUER and GRPC_OIDC_CLIENT_ID");
  }
  // deploy/secret.yaml.example's placeholder, applied unchanged, is a token everyone can read.
  if (c.logAccessTokens?.some((t) => t.includes("CHANGE-ME"))) problems.push("LOG_ACCESS_TOKEN is still the placeholder of deploy/secret.yaml.example: set a random one");
  if (c.metricsPort !== undefined && c.metricsPort !== 0 && c.metricsPort === c.healthCheckPort) {
    problems.push(`METRICS_PORT=${c.metricsPort}: must differ from HEALTH_CHECK_PORT`);
  }
  return problems;
}

/** `scheme://host[:port]` and nothing more: what a browser sends as Origin. */
function isOrigin(s: string): boolean {
  try {
    const u = new URL(s);
    return (u.protocol === "https:" || u.protocol === "http:") && u.origin === s.replace(/\/$/, "");
  } catch {
    return false;
  }
}

function postgresUrlFromParts(c: Pick<Config, "dbHost" | "dbPort" | "dbUser" | "dbPassword" | "dbName" | "dbSslMode">): string {
  const u = new URL("postgres://localhost");
  u.hostname = c.dbHost;
  u.port = String(c.dbPort);
  u.username = encodeURIComponent(c.dbUser);
  u.password = encodeURIComponent(c.dbPassword);
  u.pathname = "/" + encodeURIComponent(c.dbName);
  u.searchParams.set("sslmode", c.dbSslMode);
  return u.toString();
}

/** Lines for `--help`: every variable with its default. */
export function describeSettings(): string[] {
  const rows = Object.values(SETTINGS) as Setting[];
  const width = Math.max(...rows.map((s) => s.env.length));
  return rows.map((s) => `  ${s.env.padEnd(width)}  ${s.help}${s.default !== undefined && !s.secret ? ` (default: ${s.default === "" ? '""' : s.default})` : ""}`);
}
