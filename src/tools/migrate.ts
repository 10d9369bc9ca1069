/**
 * `manman-processor migrate`: the migrations `serve` runs at start, then
 * exit. Creates the database first when it does not exist and the role may
 * (src/db/create-database.ts), as `serve` does. Each migration is a log
 * line; on a terminal one more line counts the seconds of the one running,
 * since one can take minutes on a large database (and a plain line every 5 s
 * says so when stderr is not a terminal).
 */
import type { Config } from "../config.ts";
import { createMissingDatabase, isMissingDatabase } from "../db/create-database.ts";
import { migrate } from "../db/migrate.ts";
import { createPool } from "../db/pool.ts";
import { createLogger, type Logger } from "../log.ts";
import { Progress, type ToolStreams } from "./progress.ts";

// Once a second: the running migration's seconds tick on the terminal.
const TICK_MS = 1000;

/** Returns the exit status; throws what main.ts reports as `fatal` (a database that does not answer, a migration that fails, a database it may not create). */
export async function runMigrate(config: Pick<Config, "postgresUrl" | "logLevel">, streams: ToolStreams): Promise<number> {
  const progress = new Progress(streams);
  const logger: Logger = createLogger({ level: config.logLevel, write: (line) => progress.print(line.trimEnd()) });
  // 60 s per statement: a migration on a large table may take that long; anything longer is worth stopping and looking at.
  const sql = createPool({ url: config.postgresUrl, max: 1, statementTimeoutMs: 60_000 });
  let current: { text: string; since: number } | undefined;
  const tick = setInterval(() => {
    if (current) progress.update(`${current.text}, ${Math.floor((Date.now() - current.since) / 1000)} s`);
  }, TICK_MS);
  try {
    for (let created = false; ; ) {
      try {
        const r = await migrate(sql, {
          logger,
          onStep: (id, step, total) => {
            logger.info("applying migration", { migration: id, step, of: total });
            current = { text: `applying migration ${step} of ${total}: ${id}`, since: Date.now() };
            progress.update(current.text);
          },
        });
        current = undefined;
        progress.done();
        logger.info("migrated database", { applied: r.applied, already_applied: r.alreadyApplied });
        return 0;
      } catch (err) {
        // A fresh box: create the database once, then migrate it.
        if (created || !isMissingDatabase(err) || !(await createMissingDatabase(config.postgresUrl, logger))) throw err;
        created = true;
      }
    }
  } finally {
    clearInterval(tick);
    progress.done();
    await sql.end({ timeout: 5 });
  }
}
