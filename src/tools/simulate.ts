/**
 * `manman-processor simulate`: a simulated fleet of host managers
 * (tools/fleet/) as a load tool against a running processor: the rows it
 * needs in the configured database, its messages on the configured broker,
 * progress while it runs and what it sent at the end. Also the fleet half
 * of `demo` (demo.ts).
 */
import type { Config } from "../config.ts";
import { createPool, type Sql } from "../db/pool.ts";
import { errorMessage } from "../util/errors.ts";
import { openOwnChannel } from "../amqp/private-api.ts";
import { connectToolBroker, describeUrl, plural, type ToolBrokerConfig } from "./broker.ts";
import { driveFleet, type FleetReport } from "./fleet/drive.ts";
import { DEFAULT_LIFETIME_MS, Fleet } from "./fleet/fleet.ts";
import { seededRandom } from "./fleet/lines.ts";
import { FleetPublisher } from "./fleet/publish.ts";
import { ensureServers, hostNames, insertPendingSession } from "./fleet/rows.ts";
import { Progress, type ToolStreams } from "./progress.ts";

export interface SimulateOptions {
  hosts: number;
  sessions: number;
  linesPerSecond: number;
  /** Seconds; unset = until Ctrl-C. */
  durationSeconds?: number;
  upstreamExact: boolean;
}

/**
 * Sessions live 20-60 s; a shorter run gets lives of a quarter to a half of
 * it, so even a 10 s run shows sessions start, run and end.
 */
export function sessionLifetimeMs(durationSeconds: number | undefined): readonly [number, number] {
  if (durationSeconds === undefined || durationSeconds * 1000 >= 3 * DEFAULT_LIFETIME_MS[1]) return DEFAULT_LIFETIME_MS;
  const ms = durationSeconds * 1000;
  return [Math.min(DEFAULT_LIFETIME_MS[0], Math.floor(ms / 4)), Math.min(DEFAULT_LIFETIME_MS[1], Math.floor(ms / 2))];
}

/** `sent in 60.0 s: 6 host status, 36 heartbeats, …` and the sessions line. */
export function reportLines(r: FleetReport, asked?: number): string[] {
  const s = r.sent;
  const rate = `${Math.round(r.linesPerSecond).toLocaleString("en")} lines/s${asked === undefined ? "" : ` of ${asked.toLocaleString("en")} asked`}`;
  const open = Object.entries(r.open).filter(([, n]) => n > 0).map(([phase, n]) => `${n} ${phase}`);
  return [
    `sent in ${(r.elapsedMs / 1000).toFixed(1)} s: ${s.host_status} host status, ${plural(s.heartbeat, "heartbeat")}, ${s.session_status} session status, ${s.log_line.toLocaleString("en")} log lines (${rate})`,
    `sessions: ${r.sessions.created} created; ${r.sessions.stopped} stopped, ${r.sessions.crashed} crashed, ${r.sessions.killed} killed, ${r.sessions.failedToStart} failed to start; ${open.length > 0 ? open.join(", ") : "none open"}`,
  ];
}

export function progressLine(r: FleetReport): string {
  return `${Math.floor(r.elapsedMs / 1000)} s: ${r.open.running ?? 0} sessions running, ${r.sent.log_line.toLocaleString("en")} lines (${Math.round(r.linesPerSecond)}/s), ${r.sent.heartbeat} heartbeats, ${r.sessions.created} sessions created`;
}

export interface FleetRunIO {
  sql: Sql;
  streams: ToolStreams;
  signal: AbortSignal;
  /** Names hosts `<prefix>-1`…; found again by name on the next run. */
  hostPrefix: string;
}

/** Rows, broker channel, fleet, run: shared by simulate and demo. Throws what went wrong before the fleet ran. */
export async function runFleetAgainst(config: ToolBrokerConfig, options: SimulateOptions, io: FleetRunIO, progress: Progress): Promise<FleetReport> {
  const serverIds = await ensureServers(io.sql, hostNames(io.hostPrefix, options.hosts)).catch((err: unknown) => {
    throw new Error(`could not create the fleet's servers rows: ${errorMessage(err)}`);
  });
  const connected = await connectToolBroker(config, "manman-processor simulate", { onLost: (why) => progress.warn(`simulate: connection to the broker lost (${why})`) });
  if (!connected.ok) throw new Error(connected.why);
  try {
    const publisher = await FleetPublisher.on(await openOwnChannel(connected.session));
    const fleet = new Fleet({
      serverIds,
      sessions: options.sessions,
      linesPerSecond: options.linesPerSecond,
      upstreamExact: options.upstreamExact,
      sessionLifetimeMs: sessionLifetimeMs(options.durationSeconds),
      random: seededRandom(Date.now()),
    });
    let warned = false;
    return await driveFleet(fleet, publisher, {
      signal: io.signal,
      durationMs: options.durationSeconds === undefined ? undefined : options.durationSeconds * 1000,
      createSession: (r) => insertPendingSession(io.sql, r.sgcId),
      onCreateFailed: (_r, err) => {
        if (!warned) progress.warn(`simulate: could not create a sessions row (trying again every 5 s): ${errorMessage(err)}`);
        warned = true;
      },
      onProgress: (r) => progress.update(progressLine(r)),
    });
  } finally {
    await connected.session.stop().catch(() => {});
  }
}

/** The command; returns the exit status. */
export async function runSimulate(config: Pick<Config, "postgresUrl"> & ToolBrokerConfig, options: SimulateOptions, io: { streams: ToolStreams; signal: AbortSignal }): Promise<number> {
  const progress = new Progress(io.streams);
  // Two connections: rows are written one at a time, a few a second.
  const sql = createPool({ url: config.postgresUrl, max: 2, statementTimeoutMs: 5_000, name: "manman-processor simulate" });
  const what = `${plural(options.hosts, "host")}, ${plural(options.sessions, "session")}, ${options.linesPerSecond} lines/s${options.durationSeconds === undefined ? " until Ctrl-C" : ` for ${options.durationSeconds} s`}${options.upstreamExact ? ", exactly as upstream host managers" : ""}`;
  progress.warn(`simulating ${what} on ${describeUrl(config.rabbitmqUrl)}, rows in ${describeUrl(config.postgresUrl)}`);
  try {
    const report = await runFleetAgainst(config, options, { sql, streams: io.streams, signal: io.signal, hostPrefix: "sim-host" }, progress);
    progress.done();
    for (const line of reportLines(report, options.linesPerSecond)) progress.print(line);
    return 0;
  } catch (err) {
    progress.done();
    progress.warn(`simulate failed: ${errorMessage(err)}`);
    return 1;
  } finally {
    await sql.end({ timeout: 5 });
  }
}
