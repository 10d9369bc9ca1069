/**
 * Schema migrations, as TypeScript strings so the compiled binary and the
 * Deno bundle carry them without file access. Append only: a migration that
 * has run somewhere never changes. Every statement is idempotent and leaves
 * tables that already exist (a ManManV2 database owned by its API) as they are.
 */
export interface Migration {
  id: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    id: "0001_contract_tables",
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
];
