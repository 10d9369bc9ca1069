/**
 * The intervals behind FAILOVER_SECONDS, derived so that a standby takes
 * the event consumer role within that budget whichever way the active
 * replica dies (docs/replicas.md has the sums). Pure.
 *
 * - A clean death (SIGTERM, SIGKILL, crash, a cut connection): the broker
 *   sees the connection or channel close and frees the role at once; a
 *   standby notices at its next check: ≤ checkMs.
 * - A silent death (frozen process, network partition): the broker closes a
 *   connection after two heartbeat intervals without a frame, checked once
 *   per interval, so 2-3 heartbeats after the last frame; then ≤ checkMs.
 * - The active replica's database gone: it keeps the role for giveUpMs (a
 *   blip, a database failover, is ridden out in place), then closes its
 *   consumer channel; then ≤ checkMs.
 */

export interface RoleTimings {
  /** How often a standby looks whether the role is free, and the active replica whether its database answers. */
  checkMs: number;
  /** AMQP heartbeat of the role's own broker connection, in whole seconds (AMQP's unit). */
  heartbeatSeconds: number;
  /** The client side gives a silent broker connection up after this long (two heartbeats: see connection.ts). */
  heartbeatTimeoutMs: number;
  /** How long the active replica keeps the role while its database does not answer. */
  giveUpMs: number;
}

// A tenth of the budget between checks (0.5 s at the default 5 s): a clean
// death costs at most that; each check is one passive queue.declare (a
// standby) or a cached SELECT 1 (the holder), nothing to a broker or database.
const CHECKS_PER_BUDGET = 10;
// Half the budget for the database: at the default, 2.5 s of a database that
// does not answer before the role moves; with the 0.5 s checks on both
// sides the move is done in about 3.5 s.
const GIVE_UP_SHARE = 0.5;

export function roleTimings(failoverSeconds: number): RoleTimings {
  const budgetMs = failoverSeconds * 1000;
  const checkMs = Math.round(budgetMs / CHECKS_PER_BUDGET);
  // A silent holder is let go within 3 heartbeats; that plus a check fits
  // the budget. 1 s at the default (2-3 s to notice, + 0.5 s).
  const heartbeatSeconds = Math.max(1, Math.floor((budgetMs - checkMs) / 3000));
  return { checkMs, heartbeatSeconds, heartbeatTimeoutMs: 2 * heartbeatSeconds * 1000, giveUpMs: Math.round(budgetMs * GIVE_UP_SHARE) };
}
