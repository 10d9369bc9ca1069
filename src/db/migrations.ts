/**
 * Schema migrations, as TypeScript strings so the compiled binary and the
 * Deno bundle carry them without file access. Append only: a migration that
 * has run somewhere never changes (0001 and 0002 have run on real installs).
 * Every statement is idempotent.
 *
 * `scope` says whose tables a migration touches. "contract" migrations build
 * the ManManV2 tables (CONTRACT §3) for a processor running on its own; they
 * run only in standalone mode, never on a database whose schema the ManManV2
 * API owns (see detectSchemaMode in migrate.ts). "processor" migrations touch
 * only processor_* tables and run everywhere.
 */
export interface Migration {
  id: string;
  scope: "contract" | "processor";
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    id: "0001_contract_tables",
    scope: "contract",
    // CONTRACT §3, column for column. No foreign key from sessions.sgc_id:
    // a standalone install has no server_game_configs table.
    sql: `
      CREATE TABLE IF NOT EXISTS servers (
        server_id  BIGSERIAL PRIMARY KEY,
        name       VARCHAR(255) NOT NULL UNIQUE,
        status     VARCHAR(50) NOT NULL DEFAULT 'offline',
        last_seen  TIMESTAMP,
        created_at TIMESTAMP NOT NULL DEFAULT now(),
        updated_at TIMESTAMP NOT NULL DEFAULT now()
      );
      CREATE TABLE IF NOT EXISTS sessions (
        session_id BIGSERIAL PRIMARY KEY,
        sgc_id     BIGINT NOT NULL,
        started_at TIMESTAMP,
        ended_at   TIMESTAMP,
        exit_code  INTEGER,
        status     VARCHAR(50) NOT NULL DEFAULT 'pending',
        created_at TIMESTAMP NOT NULL DEFAULT now(),
        updated_at TIMESTAMP NOT NULL DEFAULT now()
      );
      CREATE TABLE IF NOT EXISTS log_references (
        log_id     BIGSERIAL PRIMARY KEY,
        session_id BIGINT NOT NULL,
        file_path  TEXT NOT NULL,
        start_time TIMESTAMP NOT NULL,
        end_time   TIMESTAMP NOT NULL,
        line_count INT NOT NULL,
        source     VARCHAR(20) NOT NULL,
        created_at TIMESTAMP NOT NULL DEFAULT now()
      );
    `,
  },
  {
    id: "0002_event_outbox",
    scope: "processor",
    // The processor's own table (not the API's): external events are written
    // here in the same statement as the change they describe, so a change is
    // never committed without its event, even if the process dies before
    // the broker confirms the publish. Rows are deleted once confirmed.
    sql: `
      CREATE TABLE IF NOT EXISTS processor_outbox (
        id          BIGSERIAL PRIMARY KEY,
        routing_key TEXT NOT NULL,
        payload     JSONB NOT NULL,
        created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
      );
    `,
  },
  {
    id: "0003_contract_tables_v2",
    scope: "contract",
    // Brings 0001's tables (and adds server_ports) to the shape ManManV2's
    // migrations 001-043 leave them in, so code tested standalone meets the
    // same columns, defaults, constraints and trigger as in a deployment.
    // Left out on purpose: foreign keys to API-only tables
    // (sessions.sgc_id, sessions.restored_from_backup_id,
    // log_references.sgc_id) and upstream's one-off data backfill of
    // servers.is_default (nothing standalone reads it). An install that ran
    // only 0001/0002 is upgraded in place: columns are added with upstream's
    // defaults, nothing is dropped.
    sql: `
      -- 0001 wrote now(); upstream writes CURRENT_TIMESTAMP (same value).
      ALTER TABLE servers
        ALTER COLUMN created_at SET DEFAULT CURRENT_TIMESTAMP,
        ALTER COLUMN updated_at SET DEFAULT CURRENT_TIMESTAMP;
      ALTER TABLE sessions
        ALTER COLUMN created_at SET DEFAULT CURRENT_TIMESTAMP,
        ALTER COLUMN updated_at SET DEFAULT CURRENT_TIMESTAMP;
      ALTER TABLE log_references
        ALTER COLUMN created_at SET DEFAULT CURRENT_TIMESTAMP;

      -- servers: upstream 009, 010, 035, 041.
      ALTER TABLE servers
        ADD COLUMN IF NOT EXISTS environment VARCHAR(100),
        ADD COLUMN IF NOT EXISTS is_default BOOLEAN NOT NULL DEFAULT FALSE,
        ADD COLUMN IF NOT EXISTS host_public_address TEXT,
        ADD COLUMN IF NOT EXISTS drain_state TEXT NOT NULL DEFAULT 'schedulable',
        ADD COLUMN IF NOT EXISTS drain_requested_at TIMESTAMPTZ;
      DO $do$ BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_constraint
                       WHERE conrelid = 'servers'::regclass AND conname = 'servers_drain_state_check') THEN
          ALTER TABLE servers ADD CONSTRAINT servers_drain_state_check
            CHECK (drain_state IN ('schedulable', 'draining', 'drained'));
        END IF;
      END $do$;
      CREATE INDEX IF NOT EXISTS idx_servers_status ON servers (status);
      CREATE INDEX IF NOT EXISTS idx_servers_last_seen ON servers (last_seen);
      CREATE INDEX IF NOT EXISTS idx_servers_environment ON servers (environment) WHERE environment IS NOT NULL;
      CREATE UNIQUE INDEX IF NOT EXISTS servers_single_default ON servers (is_default) WHERE is_default;

      -- sessions: upstream 004 (its foreign key to backups is API-only).
      ALTER TABLE sessions ADD COLUMN IF NOT EXISTS restored_from_backup_id BIGINT;
      CREATE INDEX IF NOT EXISTS idx_sessions_sgc_id ON sessions (sgc_id);
      CREATE INDEX IF NOT EXISTS idx_sessions_status ON sessions (status);
      CREATE INDEX IF NOT EXISTS idx_sessions_started_at ON sessions (started_at);
      CREATE INDEX IF NOT EXISTS idx_sessions_restored_from ON sessions (restored_from_backup_id);

      -- updated_at on every UPDATE, as upstream 001 (the stale-session check
      -- relies on it: a repeated 'starting' keepalive only bumps updated_at).
      -- The body is upstream's to the byte (indentation included), so the
      -- function is identical in pg_proc.
      CREATE OR REPLACE FUNCTION update_updated_at_column()
      RETURNS TRIGGER AS $fn$
BEGIN
    NEW.updated_at = CURRENT_TIMESTAMP;
    RETURN NEW;
END;
$fn$ LANGUAGE plpgsql;
      DO $do$ BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_trigger
                       WHERE tgrelid = 'servers'::regclass AND tgname = 'update_servers_updated_at') THEN
          CREATE TRIGGER update_servers_updated_at BEFORE UPDATE ON servers
            FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();
        END IF;
        IF NOT EXISTS (SELECT 1 FROM pg_trigger
                       WHERE tgrelid = 'sessions'::regclass AND tgname = 'update_sessions_updated_at') THEN
          CREATE TRIGGER update_sessions_updated_at BEFORE UPDATE ON sessions
            FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();
        END IF;
      END $do$;

      -- server_ports: upstream 001 + 008 + 014 (sgc_id replaced by session_id).
      CREATE TABLE IF NOT EXISTS server_ports (
        server_id    BIGINT NOT NULL REFERENCES servers (server_id) ON DELETE CASCADE,
        port         INTEGER NOT NULL,
        protocol     VARCHAR(10) NOT NULL CHECK (protocol IN ('TCP', 'UDP')),
        allocated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
        session_id   BIGINT REFERENCES sessions (session_id) ON DELETE CASCADE,
        PRIMARY KEY (server_id, port, protocol)
      );
      CREATE INDEX IF NOT EXISTS idx_server_ports_server_id ON server_ports (server_id);
      CREATE INDEX IF NOT EXISTS idx_server_ports_session_id ON server_ports (session_id) WHERE session_id IS NOT NULL;

      -- log_references: upstream 002 + 017 (its foreign key to
      -- server_game_configs is API-only).
      ALTER TABLE log_references
        ADD COLUMN IF NOT EXISTS sgc_id BIGINT,
        ADD COLUMN IF NOT EXISTS minute_timestamp TIMESTAMP,
        ADD COLUMN IF NOT EXISTS state VARCHAR(20) DEFAULT 'complete',
        ADD COLUMN IF NOT EXISTS appended_at TIMESTAMP;
      UPDATE log_references lr SET sgc_id = s.sgc_id
        FROM sessions s WHERE lr.session_id = s.session_id AND lr.sgc_id IS NULL;
      CREATE INDEX IF NOT EXISTS idx_log_refs_session_id ON log_references (session_id);
      CREATE INDEX IF NOT EXISTS idx_log_refs_start_time ON log_references (start_time);
      CREATE INDEX IF NOT EXISTS idx_log_refs_sgc_minute ON log_references (sgc_id, minute_timestamp DESC);
      CREATE INDEX IF NOT EXISTS idx_log_refs_state ON log_references (state) WHERE state = 'pending';
      -- 0001 had no foreign key to sessions. Rows written since may point at
      -- sessions that are gone; rather than fail every start on them, the
      -- key then stays NOT VALID (still enforced for new rows) with a warning.
      DO $do$ BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_constraint
                       WHERE conrelid = 'log_references'::regclass AND contype = 'f'
                         AND confrelid = 'sessions'::regclass) THEN
          ALTER TABLE log_references ADD CONSTRAINT log_references_session_id_fkey
            FOREIGN KEY (session_id) REFERENCES sessions (session_id) ON DELETE CASCADE NOT VALID;
          BEGIN
            ALTER TABLE log_references VALIDATE CONSTRAINT log_references_session_id_fkey;
          EXCEPTION WHEN foreign_key_violation THEN
            RAISE WARNING 'log_references has rows for sessions that do not exist; log_references_session_id_fkey left NOT VALID';
          END;
        END IF;
      END $do$;
    `,
  },
  {
    id: "0004_log_archive_parts",
    scope: "processor",
    // The log archive's part numbers (issue 10): one row per (session, UTC
    // minute) holding how many parts have been handed out. Replicas may hold
    // lines of the same minute at once, and log_references (the API's table)
    // has no unique key to arbitrate, so a part is claimed here with one
    // INSERT ... ON CONFLICT DO UPDATE, which serialises concurrent claims
    // on the primary key: no two writers ever get the same number, with no
    // transaction held open. No foreign key to sessions: the API owns that
    // table's catalog; the archive's maintenance prunes old rows instead.
    sql: `
      CREATE TABLE IF NOT EXISTS processor_log_archive_parts (
        session_id       BIGINT NOT NULL,
        minute_timestamp TIMESTAMP NOT NULL,
        parts            INT NOT NULL,
        PRIMARY KEY (session_id, minute_timestamp)
      );
      CREATE INDEX IF NOT EXISTS processor_log_archive_parts_minute ON processor_log_archive_parts (minute_timestamp);
    `,
  },
  {
    id: "0005_outbox_commands",
    scope: "processor",
    // The outbox also carries commands to host managers (the backup
    // scheduler: a backups row and its `command.host.<id>.backup` are
    // written by one statement, so neither exists without the other). A
    // command names its exchange (`manman`), keeps its exact body (the
    // host's field order, which JSONB would not keep) and its AMQP
    // properties (`expiration`). NULL in all three is an external event,
    // published exactly as before, so existing rows need nothing.
    sql: `
      ALTER TABLE processor_outbox
        ADD COLUMN IF NOT EXISTS exchange   TEXT,
        ADD COLUMN IF NOT EXISTS body       TEXT,
        ADD COLUMN IF NOT EXISTS properties JSONB;
    `,
  },
  {
    id: "0006_session_transitions",
    scope: "processor",
    // What happened to a session (issue 14): one row per applied move,
    // written by the statement that makes the move (db/sessions.ts,
    // db/stale.ts), so no move is ever committed without its row. A
    // keepalive is not a move and writes none. `reason` says what moved it:
    // 'message' (a status.session.* message, routing_key its key),
    // 'superseded' (stopped because by_session_id of the same game server
    // config started running; routing_key that message's key) or
    // 'stale_sweep' (marked lost for silence; no routing key).
    // Kept, not pruned: a session moves forward only, so it has at most 5
    // rows (~100 bytes each). No foreign key to sessions (the API owns that
    // table's catalog, as for 0004); the rows of a deleted session stay
    // and are never read unless asked for by its id.
    sql: `
      CREATE TABLE IF NOT EXISTS processor_session_transitions (
        id            BIGSERIAL PRIMARY KEY,
        session_id    BIGINT NOT NULL,
        from_status   TEXT NOT NULL,
        to_status     TEXT NOT NULL,
        exit_code     INTEGER,
        at            TIMESTAMPTZ NOT NULL DEFAULT now(),
        routing_key   TEXT,
        reason        TEXT NOT NULL,
        by_session_id BIGINT
      );
      CREATE INDEX IF NOT EXISTS processor_session_transitions_session_at
        ON processor_session_transitions (session_id, at, id);
    `,
  },
];
