/**
 * `bench:logs` (bench/logs.ts): where a delivery phase's missing messages
 * went, so that a step that lost some says whose loss it was.
 */
import type { Report } from "./logs-clients.ts";
import type { Server } from "./logs-server.ts";

type ServerStats = Awaited<ReturnType<Server["stats"]>>;
const fmt = (n: number) => Math.round(n).toLocaleString("en");

/**
 * Where missing messages went, each place counted on its own: lines the
 * service never took from its queue (published while its connection was
 * down, or dropped from a full queue), lines its hub got but a stream did
 * not (streams the service ended, by the reason it counts; streams the
 * clients saw end, by status), and streams that stayed open yet got fewer
 * lines than their session had (lost in between: a service or client bug).
 */
export function lossReport(reports: Report[], total: number, sessions: number, before: ServerStats, after: ServerStats, hubLines: number): { any: boolean; text: string } {
  const ingested = after.ingested - before.ingested;
  const endedByService = Object.entries(after.ended)
    .map(([reason, n]) => [reason, n - (before.ended[reason] ?? 0)] as const)
    .filter(([, n]) => n > 0);
  const endedBy = new Map<string, number>();
  for (const r of reports) for (const [why, n] of Object.entries(r.endedBy)) endedBy.set(why, (endedBy.get(why) ?? 0) + n);
  // Every session gets total / sessions lines (line i goes to session i % sessions).
  const share = Math.floor(total / sessions);
  let short = 0;
  let shortBy = 0;
  for (const r of reports) {
    for (const [got, streams] of r.perStream) {
      if (got >= share) continue;
      short += streams;
      shortBy += (share - got) * streams;
    }
  }
  const ended = [...endedBy.values()].reduce((a, b) => a + b, 0);
  const times = (n: number) => `${n} ${n === 1 ? "time" : "times"}`;
  const text =
    `  where: the service took ${fmt(ingested)} of ${fmt(total)} lines from its queue (the rest reached no queue while its broker connection was down, lost ${times(after.disconnects - before.disconnects)}, ` +
    `or the broker dropped them from a full queue, found full ${times(after.queueFull - before.queueFull)}); ` +
    `its hub watchers saw ${fmt(hubLines)}; ` +
    `streams the service ended: ${endedByService.length > 0 ? endedByService.map(([r, n]) => `${n} ${r}`).join(", ") : "none"}; ` +
    `streams the clients saw end: ${ended > 0 ? [...endedBy].map(([w, n]) => `${n} ${w}`).join(", ") : "none"}; ` +
    `${short} streams got fewer than their session's ${share} lines (${fmt(shortBy)} messages short)`;
  return { any: ingested < total || ended > 0 || short > 0 || after.disconnects > before.disconnects, text };
}
