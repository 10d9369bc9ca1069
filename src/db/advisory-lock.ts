/**
 * "One replica at a time" for periodic work (the log archive's retention
 * and crash-leftover sweeps): a session-level pg_try_advisory_lock on a
 * connection of its own, held while the work runs on the main pool and
 * released after. If the process dies, its connection closes and the server
 * drops the lock, so another replica takes the next turn; no transaction is
 * held open meanwhile (postgres.js on Bun, PITFALLS).
 */
import postgres from "postgres";

export interface AdvisoryLockOptions {
  url: string;
  /** Any fixed 64-bit number that names the work. */
  key: bigint;
  /** Connect and statement deadline, ms. */
  timeoutMs: number;
}

/** The release function when this process got the lock; null when another holds it. Rejects when the database cannot be asked. */
export async function tryAdvisoryLock(options: AdvisoryLockOptions): Promise<(() => Promise<void>) | null> {
  const sql = postgres(options.url, {
    // One connection: the lock belongs to it, and the unlock must run on it.
    max: 1,
    connect_timeout: Math.max(1, Math.ceil(options.timeoutMs / 1000)),
    fetch_types: false,
    onnotice: () => {},
    connection: { application_name: "manman-processor-lock", statement_timeout: options.timeoutMs },
  });
  const end = () => sql.end({ timeout: 1 }).catch(() => {});
  try {
    const [row] = await sql<{ locked: boolean }[]>`SELECT pg_try_advisory_lock(${options.key.toString()}::bigint) AS locked`;
    if (!row?.locked) {
      await end();
      return null;
    }
  } catch (err) {
    await end();
    throw err;
  }
  return async () => {
    // Ending the connection releases the lock too; unlock first so the next
    // turn need not wait for the server to notice the closed socket.
    await sql`SELECT pg_advisory_unlock(${options.key.toString()}::bigint)`.catch(() => {});
    await end();
  };
}
