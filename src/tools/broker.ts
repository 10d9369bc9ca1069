/**
 * The broker connection of a one-off command (cutover, dlq, watch): the
 * service's own connect (TLS, heartbeats, reconnects) with a deadline,
 * because connectBroker retries without end and an operator at a terminal
 * should hear about a broker that is not there, not wait on it.
 */
import { connectBroker, type BrokerSession } from "../amqp/connection.ts";
import { brokerTlsOptions, type BrokerTlsSettings } from "../amqp/tls.ts";
import type { Config } from "../config.ts";
import { createLogger } from "../log.ts";
import { errorMessage } from "../util/errors.ts";

// 10 s: a broker that is up answers in milliseconds.
export const BROKER_DEADLINE_MS = 10_000;

export type ToolBrokerConfig = Pick<Config, "rabbitmqUrl"> & BrokerTlsSettings;

export type ToolConnect = { ok: true; session: BrokerSession } | { ok: false; why: string };

/**
 * Connects within `deadlineMs`. After that first connect the session
 * reconnects by itself; `onLost` hears each loss (a command holding
 * deliveries must stop: their tags died with the connection).
 */
export async function connectToolBroker(
  config: ToolBrokerConfig,
  name: string,
  options: { deadlineMs?: number; onLost?: (why: string) => void; onConnect?: (session: BrokerSession) => Promise<void> } = {},
): Promise<ToolConnect> {
  const deadlineMs = options.deadlineMs ?? BROKER_DEADLINE_MS;
  // The last connect error is kept for the message; a loss after connecting is told to onLost.
  let lastError = "";
  const logger = createLogger({
    level: "warn",
    write: (line) => {
      const entry = JSON.parse(line) as { msg?: string; error?: string };
      lastError = String(entry.error ?? lastError);
      if (entry.msg?.includes("connection lost")) options.onLost?.(entry.error ?? "connection lost");
    },
  });
  const deadline = AbortSignal.timeout(deadlineMs);
  try {
    const session = await connectBroker({ url: config.rabbitmqUrl, logger, signal: deadline, name, tls: brokerTlsOptions(config.rabbitmqUrl, config), onConnect: options.onConnect });
    return { ok: true, session };
  } catch (err) {
    const why = deadline.aborted ? `no connection within ${deadlineMs / 1000} s${lastError ? ` (${lastError})` : ""}` : errorMessage(err);
    return { ok: false, why: `could not connect to the broker ${describeUrl(config.rabbitmqUrl)}: ${why}` };
  }
}

/** scheme://host:port/path, without credentials: fit for a terminal or a ticket. */
export function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${decodeURIComponent(u.pathname)}`;
  } catch {
    return "(unparsable URL)";
  }
}

export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}
