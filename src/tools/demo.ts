/**
 * `manman-processor demo`: the service and a simulated fleet in one process,
 * on a vhost and a database of their own (`manman-demo` unless --name says
 * otherwise) next to the configured broker and PostgreSQL, so a newcomer
 * sees the viewer come alive without touching anything real. Both are
 * created when missing and kept afterwards for inspection. One shutdown
 * signal (Ctrl-C) stops the fleet (its hosts say offline) and drains the
 * service; the exit status is 0 then.
 */
import type { Config } from "../config.ts";
import { createPool } from "../db/pool.ts";
import { createLogger } from "../log.ts";
import { startService } from "../service.ts";
import { onAbort } from "../util/abort.ts";
import { errorMessage } from "../util/errors.ts";
import { connectToolBroker, describeUrl } from "./broker.ts";
import { Progress, type ToolStreams } from "./progress.ts";
import { progressLine, reportLines, runFleetAgainst, type SimulateOptions } from "./simulate.ts";
import { ensureVhost, howToCreateVhost, urlWithVhost } from "./vhost.ts";

// A small fleet: the session list fits a screen and a session's lines scroll at a readable pace.
export const DEMO_FLEET: SimulateOptions = { hosts: 3, sessions: 8, linesPerSecond: 40, upstreamExact: false };

/** The configured database URL with `database` as its name. */
export function urlWithDatabase(postgresUrl: string, database: string): string {
  const u = new URL(postgresUrl);
  u.pathname = "/" + encodeURIComponent(database);
  return u.toString();
}

/** The first line a user reads: the viewer, and the token when the logs need one. */
export function viewerLines(httpPort: number, tokens: readonly string[] | undefined): string[] {
  const url = `http://127.0.0.1:${httpPort}/`;
  const token = tokens?.[0];
  return token === undefined ? [`viewer: ${url}`] : [`viewer: ${url}  (LOG_ACCESS_TOKEN is set: paste ${token} when the page asks)`];
}

export async function runDemo(config: Config, options: { name: string }, io: { streams: ToolStreams; signal: AbortSignal }): Promise<number> {
  const progress = new Progress(io.streams);
  const say = (line: string) => progress.print(`demo: ${line}`);
  const fail = (line: string) => {
    progress.done();
    progress.warn(`demo failed: ${line}`);
    return 1;
  };
  const rabbitmqUrl = urlWithVhost(config.rabbitmqUrl, options.name);
  const postgresUrl = urlWithDatabase(config.postgresUrl, options.name);
  const demo: Config = { ...config, rabbitmqUrl, postgresUrl, databaseUrl: postgresUrl };

  const vhost = await ensureVhost(config.rabbitmqUrl, options.name);
  // It may exist already although neither way could say so (no management API, broker elsewhere): connecting tells.
  const probe = await connectToolBroker(demo, "manman-processor demo", { deadlineMs: vhost.ok ? 10_000 : 3_000 });
  if (!probe.ok) {
    return fail(vhost.ok ? probe.why : `${probe.why}\nthe vhost ${options.name} could not be created (${vhost.why.join("; ")}); create it ${howToCreateVhost(config.rabbitmqUrl, options.name)}`);
  }
  await probe.session.stop().catch(() => {});

  // Only problems from the service itself: the demo's own lines are the output.
  const logger = createLogger({ level: "warn", write: (line) => progress.warn(line.trimEnd()) });
  // The one shutdown: Ctrl-C, or the fleet failing, stops both halves.
  const shutdown = new AbortController();
  const unlisten = onAbort(io.signal, () => shutdown.abort());
  let service;
  try {
    // Creates the database when missing (logged), or throws what to run.
    service = await startService({ config: demo, logger, signal: shutdown.signal });
  } catch (err) {
    unlisten();
    return fail(errorMessage(err));
  }
  say(`vhost ${options.name} (${describeUrl(rabbitmqUrl)}, made with ${vhost.ok ? vhost.how : "neither way: it existed"}), database ${options.name} (${describeUrl(postgresUrl)}); both are kept afterwards for inspection`);
  for (const line of viewerLines(service.httpPort, config.logAccessTokens)) say(line);
  say(`${DEMO_FLEET.hosts} hosts, ${DEMO_FLEET.sessions} sessions, ${DEMO_FLEET.linesPerSecond} lines/s; Ctrl-C stops`);

  const sql = createPool({ url: postgresUrl, max: 2, statementTimeoutMs: 5_000, name: "manman-processor demo fleet" });
  let code = 0;
  try {
    const report = await runFleetAgainst(demo, DEMO_FLEET, { sql, streams: io.streams, signal: shutdown.signal, hostPrefix: "demo-host" }, progress);
    progress.done();
    for (const line of reportLines(report)) say(line);
  } catch (err) {
    code = fail(`the fleet stopped: ${errorMessage(err)}`);
  } finally {
    await sql.end({ timeout: 5 });
  }
  shutdown.abort();
  unlisten();
  await service.stopped;
  say("stopped");
  return code;
}
