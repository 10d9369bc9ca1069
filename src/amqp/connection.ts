/**
 * One AMQPSession per process. The session reconnects by itself once it has
 * connected, but the first connect throws when the broker is not there yet
 * (a container starting beside RabbitMQ), so that one is retried here.
 * The session does not restore topology (amqp-client.js#249): `onConnect`
 * runs after every (re)connect so callers can redeclare what they need.
 * The caller closes the session (`session.stop()`) once its consumers have
 * drained; the signal only cuts short the first-connect retries.
 */
import { AMQPSession } from "@cloudamqp/amqp-client";
import type { Logger } from "../log.ts";
import { backoff, sleep } from "../util/time.ts";

export type BrokerSession = AMQPSession;

export interface BrokerOptions {
  url: string;
  logger: Logger;
  signal: AbortSignal;
  /** Connection name shown in the RabbitMQ management UI. */
  name?: string;
  /** After every connect and reconnect; errors are logged, not thrown. */
  onConnect?: (session: BrokerSession) => void | Promise<void>;
  onDisconnect?: (error?: Error) => void;
}

export async function connectBroker(options: BrokerOptions): Promise<BrokerSession> {
  const { logger, signal } = options;
  const log = logger.child({ component: "amqp" });
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
        logger: quietAmqpLogger(log),
        onconnect: (s) => {
          ready = Promise.resolve(options.onConnect?.(s)).catch((err) =>
            log.error("setting up after connect failed", { error: errorMessage(err) }),
          );
        },
        ondisconnect: (err) => {
          log.warn("broker connection lost; reconnecting", { error: err?.message });
          options.onDisconnect?.(err);
        },
      });
      await ready;
      return session;
    } catch (err) {
      if (signal.aborted) throw err;
      const delay = backoff(attempt, 500, 10_000);
      log.warn("broker unreachable; retrying", { error: errorMessage(err), attempt, retry_in_ms: delay });
      await sleep(delay, signal);
    }
  }
}

/** amqp-client logs every reconnect attempt at warn; keep ours as the one line per state change. */
function quietAmqpLogger(log: Logger): Pick<Console, "debug" | "info" | "warn" | "error"> {
  return {
    debug: (...a: unknown[]) => log.debug(String(a[0]), ...a.slice(1)),
    info: (...a: unknown[]) => log.debug(String(a[0]), ...a.slice(1)),
    warn: (...a: unknown[]) => log.debug(String(a[0]), ...a.slice(1)),
    error: (...a: unknown[]) => log.error(String(a[0]), ...a.slice(1)),
  };
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
