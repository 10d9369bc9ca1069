/**
 * One AMQPSession per process. The session reconnects by itself once it has
 * connected, but the first connect throws when the broker is not there yet
 * (a container starting beside RabbitMQ), so that one is retried here.
 * The session does not restore topology (amqp-client.js#249): `onConnect`
 * runs after every (re)connect so callers can redeclare what they need.
 * The caller closes the session (`session.stop()`) once its consumers have
 * drained; the signal only cuts short the first-connect retries.
 *
 * The log gets one line per change of state: lost, still down every 30 s,
 * back (amqp-client's own per-attempt lines go to debug).
 *
 * TLS (amqps://) options are built once by `brokerTlsOptions` (./tls.ts) and
 * belong to the session's one client, so every connection it opens, first
 * and reconnects alike, uses them.
 *
 * Heartbeats: amqp-client proposes none unless asked, and a connection whose
 * peer vanished without a FIN (a partition, a frozen process) is then only
 * found by TCP keepalive, minutes later. The main session asks for
 * MAIN_HEARTBEAT_SECONDS; the event consumer's role connection asks for a
 * heartbeat derived from FAILOVER_SECONDS (event-pipeline/role-timings.ts),
 * because the broker frees the exclusive consumer only when it drops that
 * connection. amqp-client gives the broker up after one silent heartbeat
 * interval, while RabbitMQ sends a heartbeat only after a whole interval
 * without other traffic, so on a healthy link silences of almost one interval
 * are normal: the client side waits two (`heartbeatTimeoutMs`).
 *
 * amqp-client sends a heartbeat only in answer to one of the broker's, and
 * RabbitMQ sends one only when it has sent nothing else for a while. While
 * deliveries flow without such a pause, neither side heartbeats, and a
 * connection that only consumes without acks (the log queue) sends the
 * broker nothing at all: RabbitMQ closed it "missed
 * heartbeats from client" three intervals (45 s) after the lines started,
 * every 45 s, and the lines published until the exclusive log queue was
 * declared again (~0.5 s) were lost (docs/logs.md, Benchmark). So the
 * client also sends its own, every half interval (`keepSendingHeartbeats`);
 * a frozen process sends none, so the role connection's failover is as it was.
 */
import { AMQPSession, type AMQPTlsOptions } from "@cloudamqp/amqp-client";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import { backoff, sleep } from "../util/time.ts";
import { certificateHint, type BrokerTlsOptions } from "./tls.ts";
import { errorMessage } from "../util/errors.ts";
import { sendHeartbeat, sessionStopped, setIdleTimeout } from "./private-api.ts";

export type BrokerSession = AMQPSession;

// 30 s between "still unreachable" lines, as for the database.
const STILL_DOWN_EVERY_MS = 30_000;
const UP = "manman_broker_up";
const UP_HELP = "1 while the broker connection is open";
// 15 s for the main session (log lines, publishes): a half-open connection
// is found within 30-45 s instead of TCP keepalive's minutes, and a stall of
// a few seconds (GC, a busy machine) never costs the log queue.
export const MAIN_HEARTBEAT_SECONDS = 15;

export interface BrokerOptions {
  url: string;
  logger: Logger;
  signal: AbortSignal;
  metrics?: Metrics;
  /** For amqps:// URLs: from `brokerTlsOptions`. */
  tls?: BrokerTlsOptions;
  /** Connection name shown in the RabbitMQ management UI. */
  name?: string;
  /** After every connect and reconnect; errors are logged, not thrown. */
  onConnect?: (session: BrokerSession) => void | Promise<void>;
  /** AMQP heartbeat in seconds (MAIN_HEARTBEAT_SECONDS unless set). */
  heartbeatSeconds?: number;
  /** The client gives a silent broker up after this long (two heartbeats unless set). */
  heartbeatTimeoutMs?: number;
  /** What the log lines call the broker side ("broker" unless set), so two sessions of one process can be told apart. */
  label?: string;
}

export async function connectBroker(options: BrokerOptions): Promise<BrokerSession> {
  const { logger, signal, metrics } = options;
  const log = logger.child({ component: "amqp" });
  const what = options.label ?? "broker";
  const heartbeat = options.heartbeatSeconds ?? MAIN_HEARTBEAT_SECONDS;
  const idleTimeoutMs = options.heartbeatTimeoutMs ?? 2 * heartbeat * 1000;
  let lostAt = 0;
  let stillDown: ReturnType<typeof setInterval> | undefined;
  const markUp = () => {
    clearInterval(stillDown);
    stillDown = undefined;
    metrics?.set(UP, UP_HELP, 1);
  };
  let lastLog = 0;
  let heartbeats: ReturnType<typeof setInterval> | undefined;
  if (options.tls?.rejectUnauthorized === false) {
    if (!options.label) log.warn("RABBITMQ_SSL_VERIFY=false: the broker's TLS certificate is not checked (development only)");
  }
  for (let attempt = 1; ; attempt++) {
    signal.throwIfAborted();
    try {
      let ready = Promise.resolve();
      const session = await AMQPSession.connect(options.url, {
        name: options.name ?? "manman-processor",
        // Session backoff: 0.5 s, doubling, capped at 10 s so a restarted
        // broker is picked up within seconds rather than the default 30.
        reconnectInterval: 500,
        maxReconnectInterval: 10_000,
        heartbeat,
        logger: quietAmqpLogger(log),
        // Wider than amqp-client's typings (./tls.ts says why that is fine).
        tlsOptions: options.tls as AMQPTlsOptions | undefined,
        onconnect: (s) => {
          setIdleTimeout(s, idleTimeoutMs);
          heartbeats ??= keepSendingHeartbeats(s, heartbeat);
          if (lostAt > 0) log.info(`${what} connection restored`, { down_ms: Date.now() - lostAt });
          lostAt = 0;
          markUp();
          ready = Promise.resolve(options.onConnect?.(s)).catch((err) =>
            log.error("setting up after connect failed", { error: errorMessage(err) }),
          );
        },
        ondisconnect: (err) => {
          lostAt = Date.now();
          metrics?.set(UP, UP_HELP, 0);
          metrics?.inc("manman_broker_disconnects_total", "times the broker connection was lost");
          log.warn(`${what} connection lost; reconnecting`, { error: err?.message });
          clearInterval(stillDown);
          stillDown = setInterval(() => log.warn(`${what} still unreachable`, { down_ms: Date.now() - lostAt }), STILL_DOWN_EVERY_MS);
          // Never keep the process alive just to say so.
          (stillDown as { unref?: () => void }).unref?.();
        },
      });
      await ready;
      if (attempt > 1) log.info(`${what} reachable; connected`, { attempts: attempt });
      markUp();
      return session;
    } catch (err) {
      if (signal.aborted) throw err;
      const delay = backoff(attempt, 500, 10_000);
      metrics?.set(UP, UP_HELP, 0);
      // The first failure and then one line per 30 s, not one per attempt.
      if (attempt === 1 || Date.now() - lastLog >= STILL_DOWN_EVERY_MS) {
        lastLog = Date.now();
        const hint = certificateHint(errorMessage(err));
        log.warn(attempt === 1 ? `${what} unreachable at start; retrying` : `${what} still unreachable`, { error: errorMessage(err), attempts: attempt, ...(hint ? { hint } : {}) });
      } else log.debug(`${what} unreachable; retrying`, { error: errorMessage(err), attempt, retry_in_ms: delay });
      await sleep(delay, signal);
    }
  }
}

/**
 * amqp-client logs every reconnect attempt at warn and a dropped connection
 * as five error lines (one per channel); what it reports reaches the log
 * through our own lines (connection lost / restored, consumer re-attached,
 * publishes refused), so its own go to debug.
 */
function quietAmqpLogger(log: Logger): Pick<Console, "debug" | "info" | "warn" | "error"> {
  const debug = (...a: unknown[]) => log.debug(String(a[0]), ...a.slice(1));
  return { debug, info: debug, warn: debug, error: debug };
}

/**
 * Sends a heartbeat every half interval while the session is connected
 * (8 bytes each), until it is stopped; never keeps the process alive.
 */
function keepSendingHeartbeats(session: BrokerSession, heartbeatSeconds: number): ReturnType<typeof setInterval> | undefined {
  if (heartbeatSeconds <= 0) return undefined;
  const timer = setInterval(() => {
    if (sessionStopped(session)) return clearInterval(timer);
    // Between connections there is no socket: the next connect picks up.
    if (!session.closed) sendHeartbeat(session).catch(() => {});
  }, (heartbeatSeconds * 1000) / 2);
  (timer as { unref?: () => void }).unref?.();
  return timer;
}
