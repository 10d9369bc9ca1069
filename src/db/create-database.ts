/**
 * A fresh box: the configured database does not exist yet (SQLSTATE 3D000,
 * invalid_catalog_name). `serve` and `migrate` create it when the configured
 * role may (CREATEDB or superuser), logging once which database on which
 * host; otherwise the error names exactly what to run, so nobody is left
 * reading "database manman does not exist" in a retry loop.
 *
 * The statement goes to a maintenance database of the same server: `postgres`
 * (createdb's own default), else `template1` (always there, but connecting
 * to it blocks CREATE DATABASE for everyone else while we hold it, so second).
 */
import postgres from "postgres";
import type { Logger } from "../log.ts";
import { errorMessage } from "../util/errors.ts";
import { isConnectionLoss } from "./errors.ts";

export const MISSING_DATABASE = "3D000";
// 42P04: another replica created it between our failure and our CREATE.
const DUPLICATE_DATABASE = "42P04";
const INSUFFICIENT_PRIVILEGE = "42501";
const MAINTENANCE_DATABASES = ["postgres", "template1"] as const;

export function isMissingDatabase(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === MISSING_DATABASE;
}

/** Where the configured URL points, as postgres.js reads it (URL, then PG* variables, then defaults). */
export interface DatabaseTarget {
  database: string;
  host: string;
  port: number;
  user: string;
}

export function databaseTarget(url: string): DatabaseTarget {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  const o = sql.options as unknown as { database: string; host: string[]; port: number[]; user: string };
  void sql.end({ timeout: 0 }).catch(() => {});
  return { database: o.database, host: o.host[0] ?? "localhost", port: o.port[0] ?? 5432, user: o.user };
}

/** Thrown when the database is missing and cannot be created from here; its message says what to run. */
export class DatabaseMissingError extends Error {
  override name = "DatabaseMissingError";
}

/** The commands that create it, for the error message and the docs (single-quoted for a shell, double-quoted as SQL identifiers). */
export function howToCreate(t: DatabaseTarget): string {
  const sh = (s: string) => (/^[\w.-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
  // Quoted only when PostgreSQL would otherwise fold or refuse the name.
  const ident = (s: string) => (/^[a-z_][a-z0-9_]*$/.test(s) ? s : `"${s.replace(/"/g, '""')}"`);
  return (
    `create it once as a role that may (e.g. postgres): createdb -h ${sh(t.host)} -p ${t.port} -U postgres -O ${sh(t.user)} ${sh(t.database)}` +
    ` — or in SQL: CREATE DATABASE ${ident(t.database)} OWNER ${ident(t.user)}; — or let this role create it: ALTER ROLE ${ident(t.user)} CREATEDB;`
  );
}

/**
 * Creates the database `url` names. Resolves true when it exists (created
 * here or by someone else meanwhile), false when the server could not be
 * asked (an outage: the caller waits as for any other); throws
 * DatabaseMissingError when this role may not create it or no maintenance
 * database lets it in.
 */
export async function createMissingDatabase(url: string, logger: Logger): Promise<boolean> {
  const t = databaseTarget(url);
  const where = `${t.host}:${t.port}`;
  const refuse = (why: string) =>
    new DatabaseMissingError(`database ${t.database} does not exist on ${where} and role ${t.user} cannot create it (${why}): ${howToCreate(t)}`);
  let lastError = "";
  for (const maintenance of MAINTENANCE_DATABASES) {
    const admin = postgres(url, {
      database: maintenance,
      max: 1,
      connect_timeout: 5,
      fetch_types: false,
      onnotice: () => {},
      connection: { application_name: "manman-processor-createdb" },
    });
    try {
      const [role] = await admin<{ may: boolean }[]>`SELECT (rolcreatedb OR rolsuper) AS may FROM pg_roles WHERE rolname = current_user`;
      if (!role?.may) throw refuse("it has neither CREATEDB nor SUPERUSER");
      try {
        await admin`CREATE DATABASE ${admin(t.database)}`;
        logger.info("created the database, which did not exist", { database: t.database, host: where, user: t.user });
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (code === INSUFFICIENT_PRIVILEGE) throw refuse(errorMessage(err));
        if (code !== DUPLICATE_DATABASE) throw err;
      }
      return true;
    } catch (err) {
      if (err instanceof DatabaseMissingError) throw err;
      const code = (err as { code?: string }).code;
      // No such maintenance database, or no CONNECT on it (28000: pg_hba refuses): try the next.
      if (code === MISSING_DATABASE || code === INSUFFICIENT_PRIVILEGE || code === "28000") {
        lastError = errorMessage(err);
        continue;
      }
      if (!isConnectionLoss(err)) throw err;
      logger.warn("could not create the missing database yet; waiting", { database: t.database, host: where, error: errorMessage(err) });
      return false;
    } finally {
      await admin.end({ timeout: 1 }).catch(() => {});
    }
  }
  throw refuse(`no maintenance database (${MAINTENANCE_DATABASES.join(", ")}) let it connect: ${lastError}`);
}
