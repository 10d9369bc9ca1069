/**
 * A database shaped as a real ManManV2 deployment leaves it: the tables the
 * processor meets there, as whale-net/everything's migrations 001-043
 * (manmanv2/migrate/migrations, the version UPSTREAM.md describes) leave
 * them after every ALTER: columns in their final order, types, defaults,
 * CHECKs, foreign keys with upstream's ON DELETE rules, indexes, the
 * updated_at trigger, and golang-migrate's `schema_migrations` at version 43.
 * Use it to test code against the schema the API owns (backup status,
 * backup scheduler, migrations that must leave it alone).
 *
 * Longer than the usual 300 lines because the schema is only useful whole;
 * the helpers at the end are what most tests need.
 *
 * Left out, as the processor never touches them: the API's other tables
 * (workshop, configuration strategies/patches, restart schedules, ui
 * sessions, …), COMMENTs, and the columns upstream added and later dropped.
 * action_definitions' creating migration (018) is not in the searchable copy
 * of upstream; its shape is 020's and 037's ALTERs over the DDL upstream's
 * own integration test (api/repository/postgres) uses for it.
 */
import postgres from "postgres";
import { createDatabase, type TestDatabase } from "./services.ts";

/** golang-migrate's version row: the last upstream migration this shape includes. */
export const MANMANV2_SCHEMA_VERSION = 43;

/** The API-owned tables this fixture creates, parents first. */
export const MANMANV2_TABLES = [
  "servers", "games", "game_configs", "server_game_configs", "sessions", "server_ports", "log_references",
  "game_config_volumes", "action_definitions", "backup_configs", "backup_config_actions", "backups",
] as const;

export const MANMANV2_SCHEMA_SQL = `
CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL);
INSERT INTO schema_migrations (version, dirty) VALUES (${MANMANV2_SCHEMA_VERSION}, false);

-- 001 + 009 (environment) + 010 (is_default) + 035 + 041 (drain state)
CREATE TABLE servers (
    server_id BIGSERIAL PRIMARY KEY,
    name VARCHAR(255) NOT NULL UNIQUE,
    status VARCHAR(50) NOT NULL DEFAULT 'offline',
    last_seen TIMESTAMP,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    environment VARCHAR(100),
    is_default BOOLEAN NOT NULL DEFAULT FALSE,
    host_public_address TEXT,
    drain_state TEXT NOT NULL DEFAULT 'schedulable',
    drain_requested_at TIMESTAMPTZ NULL,
    CONSTRAINT servers_drain_state_check CHECK (drain_state IN ('schedulable', 'draining', 'drained'))
);
CREATE INDEX idx_servers_status ON servers(status);
CREATE INDEX idx_servers_last_seen ON servers(last_seen);
CREATE INDEX idx_servers_environment ON servers(environment) WHERE environment IS NOT NULL;
CREATE UNIQUE INDEX servers_single_default ON servers (is_default) WHERE is_default;

-- 001
CREATE TABLE games (
    game_id BIGSERIAL PRIMARY KEY,
    name VARCHAR(255) NOT NULL UNIQUE,
    steam_app_id VARCHAR(50),
    metadata JSONB DEFAULT '{}',
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX idx_games_name ON games(name);
CREATE INDEX idx_games_steam_app_id ON games(steam_app_id) WHERE steam_app_id IS NOT NULL;

-- 001 + 005 (entrypoint, command); parameters dropped by 019
CREATE TABLE game_configs (
    config_id BIGSERIAL PRIMARY KEY,
    game_id BIGINT NOT NULL REFERENCES games(game_id) ON DELETE CASCADE,
    name VARCHAR(255) NOT NULL,
    image VARCHAR(500) NOT NULL,
    args_template TEXT,
    env_template JSONB DEFAULT '{}',
    files JSONB DEFAULT '{}',
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    entrypoint JSONB DEFAULT NULL,
    command JSONB DEFAULT NULL,
    UNIQUE(game_id, name)
);
CREATE INDEX idx_game_configs_game_id ON game_configs(game_id);

-- 001; parameters dropped by 019
CREATE TABLE server_game_configs (
    sgc_id BIGSERIAL PRIMARY KEY,
    server_id BIGINT NOT NULL REFERENCES servers(server_id) ON DELETE CASCADE,
    game_config_id BIGINT NOT NULL REFERENCES game_configs(config_id) ON DELETE CASCADE,
    port_bindings JSONB DEFAULT '{}',
    status VARCHAR(50) NOT NULL DEFAULT 'inactive',
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    UNIQUE(server_id, game_config_id)
);
CREATE INDEX idx_sgc_server_id ON server_game_configs(server_id);
CREATE INDEX idx_sgc_game_config_id ON server_game_configs(game_config_id);
CREATE INDEX idx_sgc_status ON server_game_configs(status);

-- 001; parameters dropped by 019; restored_from_backup_id (004) added below,
-- once backups exists
CREATE TABLE sessions (
    session_id BIGSERIAL PRIMARY KEY,
    sgc_id BIGINT NOT NULL REFERENCES server_game_configs(sgc_id) ON DELETE CASCADE,
    started_at TIMESTAMP,
    ended_at TIMESTAMP,
    exit_code INTEGER,
    status VARCHAR(50) NOT NULL DEFAULT 'pending',
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX idx_sessions_sgc_id ON sessions(sgc_id);
CREATE INDEX idx_sessions_status ON sessions(status);
CREATE INDEX idx_sessions_started_at ON sessions(started_at);

-- 001 (008's CREATE TABLE IF NOT EXISTS was a no-op but for its index);
-- 014 replaced sgc_id with session_id
CREATE TABLE server_ports (
    server_id BIGINT NOT NULL REFERENCES servers(server_id) ON DELETE CASCADE,
    port INTEGER NOT NULL,
    protocol VARCHAR(10) NOT NULL CHECK (protocol IN ('TCP', 'UDP')),
    allocated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    session_id BIGINT REFERENCES sessions(session_id) ON DELETE CASCADE,
    PRIMARY KEY (server_id, port, protocol)
);
CREATE INDEX idx_server_ports_server_id ON server_ports(server_id);
CREATE INDEX idx_server_ports_session_id ON server_ports(session_id) WHERE session_id IS NOT NULL;

-- 002 + 017
CREATE TABLE log_references (
    log_id BIGSERIAL PRIMARY KEY,
    session_id BIGINT NOT NULL REFERENCES sessions(session_id) ON DELETE CASCADE,
    file_path TEXT NOT NULL,
    start_time TIMESTAMP NOT NULL,
    end_time TIMESTAMP NOT NULL,
    line_count INT NOT NULL,
    source VARCHAR(20) NOT NULL,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    sgc_id BIGINT,
    minute_timestamp TIMESTAMP,
    state VARCHAR(20) DEFAULT 'complete',
    appended_at TIMESTAMP,
    CONSTRAINT fk_log_references_sgc FOREIGN KEY (sgc_id) REFERENCES server_game_configs(sgc_id) ON DELETE CASCADE
);
CREATE INDEX idx_log_refs_session_id ON log_references(session_id);
CREATE INDEX idx_log_refs_start_time ON log_references(start_time);
CREATE INDEX idx_log_refs_sgc_minute ON log_references(sgc_id, minute_timestamp DESC);
CREATE INDEX idx_log_refs_state ON log_references(state) WHERE state = 'pending';

-- 025 + 028 (volume_type) + 034 (is_enabled)
CREATE TABLE game_config_volumes (
    volume_id BIGSERIAL PRIMARY KEY,
    config_id BIGINT NOT NULL REFERENCES game_configs(config_id) ON DELETE CASCADE,
    name VARCHAR(100) NOT NULL,
    description TEXT,
    container_path TEXT NOT NULL,
    host_subpath TEXT,
    read_only BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    volume_type VARCHAR(20) NOT NULL DEFAULT 'bind' CHECK (volume_type IN ('bind', 'named')),
    is_enabled BOOLEAN NOT NULL DEFAULT TRUE,
    UNIQUE(config_id, name)
);
CREATE INDEX idx_game_config_volumes_config_id ON game_config_volumes(config_id);

-- 018 + 020 (level-based: definition_level, entity_id) + 037 (deleted_at)
CREATE TABLE action_definitions (
    action_id BIGSERIAL PRIMARY KEY,
    name VARCHAR(100) NOT NULL,
    label VARCHAR(200) NOT NULL,
    description TEXT,
    command_template TEXT NOT NULL,
    display_order INT NOT NULL DEFAULT 0,
    group_name VARCHAR(100),
    button_style VARCHAR(50) DEFAULT 'primary',
    icon VARCHAR(100),
    requires_confirmation BOOLEAN DEFAULT false,
    confirmation_message TEXT,
    enabled BOOLEAN DEFAULT true,
    created_at TIMESTAMPTZ DEFAULT NOW(),
    updated_at TIMESTAMPTZ DEFAULT NOW(),
    definition_level VARCHAR(50) DEFAULT 'game',
    entity_id BIGINT NOT NULL,
    deleted_at TIMESTAMPTZ,
    CHECK (name ~ '^[a-z0-9_]+$'),
    CHECK (button_style IN ('primary', 'secondary', 'success', 'danger', 'warning', 'info', 'light', 'dark')),
    CONSTRAINT check_action_definition_level CHECK (definition_level IN ('game', 'game_config', 'server_game_config')),
    CONSTRAINT action_definitions_level_entity_name_key UNIQUE (definition_level, entity_id, name)
);
CREATE INDEX idx_action_definitions_level_entity ON action_definitions(definition_level, entity_id);
CREATE INDEX idx_action_definitions_level_entity_enabled ON action_definitions(definition_level, entity_id, enabled);
CREATE INDEX idx_action_definitions_display_order ON action_definitions(definition_level, entity_id, display_order);

-- 029 + 030 (deleted_at). No updated_at trigger: the API sets it.
CREATE TABLE backup_configs (
    backup_config_id BIGSERIAL PRIMARY KEY,
    volume_id        BIGINT  NOT NULL REFERENCES game_config_volumes(volume_id) ON DELETE CASCADE,
    cadence_minutes  INT     NOT NULL CHECK (cadence_minutes > 0),
    backup_path      TEXT    NOT NULL,
    enabled          BOOLEAN NOT NULL DEFAULT true,
    last_backup_at   TIMESTAMP,
    created_at       TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at       TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    deleted_at       TIMESTAMP
);
CREATE INDEX idx_backup_configs_volume_id ON backup_configs(volume_id);

-- 029
CREATE TABLE backup_config_actions (
    backup_config_id BIGINT NOT NULL REFERENCES backup_configs(backup_config_id) ON DELETE CASCADE,
    action_id        BIGINT NOT NULL REFERENCES action_definitions(action_id) ON DELETE CASCADE,
    display_order    INT    NOT NULL DEFAULT 0,
    PRIMARY KEY (backup_config_id, action_id)
);

-- 004 + 029 (config/volume links, status, error; s3_url and size_bytes
-- nullable) + 030 (deleted_at)
CREATE TABLE backups (
    backup_id BIGSERIAL PRIMARY KEY,
    session_id BIGINT NOT NULL REFERENCES sessions(session_id) ON DELETE CASCADE,
    server_game_config_id BIGINT NOT NULL REFERENCES server_game_configs(sgc_id) ON DELETE CASCADE,
    s3_url TEXT,
    size_bytes BIGINT,
    description TEXT,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    backup_config_id BIGINT REFERENCES backup_configs(backup_config_id) ON DELETE SET NULL,
    volume_id        BIGINT REFERENCES game_config_volumes(volume_id) ON DELETE SET NULL,
    status           TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'running', 'completed', 'failed')),
    error_message    TEXT,
    deleted_at TIMESTAMP
);
CREATE INDEX idx_backups_session_id ON backups(session_id);
CREATE INDEX idx_backups_sgc_id ON backups(server_game_config_id);
CREATE INDEX idx_backups_created_at ON backups(created_at DESC);
CREATE INDEX idx_backups_backup_config_id ON backups(backup_config_id);
CREATE INDEX idx_backups_status ON backups(status);

-- 004
ALTER TABLE sessions ADD COLUMN restored_from_backup_id BIGINT REFERENCES backups(backup_id) ON DELETE SET NULL;
CREATE INDEX idx_sessions_restored_from ON sessions(restored_from_backup_id);

-- 001
CREATE OR REPLACE FUNCTION update_updated_at_column()
RETURNS TRIGGER AS $$
BEGIN
    NEW.updated_at = CURRENT_TIMESTAMP;
    RETURN NEW;
END;
$$ language 'plpgsql';
CREATE TRIGGER update_servers_updated_at BEFORE UPDATE ON servers
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();
CREATE TRIGGER update_games_updated_at BEFORE UPDATE ON games
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();
CREATE TRIGGER update_game_configs_updated_at BEFORE UPDATE ON game_configs
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();
CREATE TRIGGER update_server_game_configs_updated_at BEFORE UPDATE ON server_game_configs
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();
CREATE TRIGGER update_sessions_updated_at BEFORE UPDATE ON sessions
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();
`;

/** A fresh database (removed by `remove()`) holding MANMANV2_SCHEMA_SQL. */
export async function createManManV2Database(prefix = "mmv2"): Promise<TestDatabase> {
  const db = await createDatabase(prefix);
  const sql = postgres(db.url, { max: 1, onnotice: () => {} });
  try {
    await sql.unsafe(MANMANV2_SCHEMA_SQL);
  } catch (err) {
    await sql.end();
    await db.remove();
    throw err;
  }
  await sql.end();
  return db;
}

// ---- Helpers: insert rows, get ids back as numbers. ------------------------

// Works with any postgres.js client, whatever its bigint type option.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnySql = postgres.Sql<any>;
const id = (row: Record<string, unknown> | undefined, column: string) => Number(row![column]);
let counter = 0;
/** Names are UNIQUE in several tables: make each one distinct. */
const unique = (base: string) => `${base}-${++counter}-${Math.random().toString(36).slice(2, 7)}`;

export async function insertServer(
  sql: AnySql,
  o: { name?: string; status?: string; lastSeen?: Date | null } = {},
): Promise<number> {
  const [r] = await sql`
    INSERT INTO servers (name, status, last_seen)
    VALUES (${o.name ?? unique("server")}, ${o.status ?? "offline"}, ${o.lastSeen ?? null})
    RETURNING server_id`;
  return id(r, "server_id");
}

/** A game and one of its game configs. */
export async function insertGameConfig(
  sql: AnySql,
  o: { game?: string; config?: string; image?: string } = {},
): Promise<{ gameId: number; configId: number }> {
  const [g] = await sql`INSERT INTO games (name) VALUES (${o.game ?? unique("game")}) RETURNING game_id`;
  const gameId = id(g, "game_id");
  const [c] = await sql`
    INSERT INTO game_configs (game_id, name, image)
    VALUES (${gameId}, ${o.config ?? "default"}, ${o.image ?? "example/game:latest"})
    RETURNING config_id`;
  return { gameId, configId: id(c, "config_id") };
}

/** A game config deployed on a server (server_game_configs). */
export async function insertSgc(sql: AnySql, o: { serverId: number; configId: number; status?: string }): Promise<number> {
  const [r] = await sql`
    INSERT INTO server_game_configs (server_id, game_config_id, status)
    VALUES (${o.serverId}, ${o.configId}, ${o.status ?? "inactive"})
    RETURNING sgc_id`;
  return id(r, "sgc_id");
}

/** Server, game, game config and SGC in one call: what a session needs. */
export async function insertDeployment(
  sql: AnySql,
  o: { serverId?: number; serverName?: string } = {},
): Promise<{ serverId: number; gameId: number; configId: number; sgcId: number }> {
  const serverId = o.serverId ?? (await insertServer(sql, { name: o.serverName }));
  const { gameId, configId } = await insertGameConfig(sql);
  return { serverId, gameId, configId, sgcId: await insertSgc(sql, { serverId, configId }) };
}

export async function insertSession(
  sql: AnySql,
  o: { sgcId: number; status?: string; startedAt?: Date | null; endedAt?: Date | null; exitCode?: number | null },
): Promise<number> {
  const [r] = await sql`
    INSERT INTO sessions (sgc_id, status, started_at, ended_at, exit_code)
    VALUES (${o.sgcId}, ${o.status ?? "pending"}, ${o.startedAt ?? null}, ${o.endedAt ?? null}, ${o.exitCode ?? null})
    RETURNING session_id`;
  return id(r, "session_id");
}

/** A backup_config together with the game_config_volume it backs up. */
export async function insertBackupConfig(
  sql: AnySql,
  o: {
    configId: number;
    cadenceMinutes?: number;
    backupPath?: string;
    enabled?: boolean;
    lastBackupAt?: Date | null;
    deletedAt?: Date | null;
    volume?: { name?: string; containerPath?: string; hostSubpath?: string | null; volumeType?: "bind" | "named" };
  },
): Promise<{ volumeId: number; backupConfigId: number }> {
  const v = o.volume ?? {};
  const [vol] = await sql`
    INSERT INTO game_config_volumes (config_id, name, container_path, host_subpath, volume_type)
    VALUES (${o.configId}, ${v.name ?? unique("data")}, ${v.containerPath ?? "/data"},
            ${v.hostSubpath === undefined ? "data" : v.hostSubpath}, ${v.volumeType ?? "bind"})
    RETURNING volume_id`;
  const volumeId = id(vol, "volume_id");
  const [bc] = await sql`
    INSERT INTO backup_configs (volume_id, cadence_minutes, backup_path, enabled, last_backup_at, deleted_at)
    VALUES (${volumeId}, ${o.cadenceMinutes ?? 60}, ${o.backupPath ?? "."}, ${o.enabled ?? true},
            ${o.lastBackupAt ?? null}, ${o.deletedAt ?? null})
    RETURNING backup_config_id`;
  return { volumeId, backupConfigId: id(bc, "backup_config_id") };
}

export async function insertBackup(
  sql: AnySql,
  o: {
    sessionId: number;
    sgcId: number;
    backupConfigId?: number | null;
    volumeId?: number | null;
    status?: "pending" | "running" | "completed" | "failed";
    s3Url?: string | null;
    sizeBytes?: number | null;
    errorMessage?: string | null;
    deletedAt?: Date | null;
  },
): Promise<number> {
  const [r] = await sql`
    INSERT INTO backups (session_id, server_game_config_id, backup_config_id, volume_id, status,
                         s3_url, size_bytes, error_message, deleted_at)
    VALUES (${o.sessionId}, ${o.sgcId}, ${o.backupConfigId ?? null}, ${o.volumeId ?? null}, ${o.status ?? "pending"},
            ${o.s3Url ?? null}, ${o.sizeBytes ?? null}, ${o.errorMessage ?? null}, ${o.deletedAt ?? null})
    RETURNING backup_id`;
  return id(r, "backup_id");
}

/**
 * Moves updated_at into the past. A plain UPDATE can't: upstream's BEFORE
 * UPDATE trigger sets it to now. session_replication_role = replica skips
 * ordinary triggers for this one transaction (the test role is a superuser).
 */
export async function backdateUpdatedAt(
  sql: AnySql,
  table: "servers" | "sessions",
  ids: number[],
  seconds: number,
): Promise<void> {
  const key = table === "servers" ? "server_id" : "session_id";
  await sql.begin(async (tx) => {
    await tx`SET LOCAL session_replication_role = replica`;
    await tx`
      UPDATE ${tx(table)} SET updated_at = now() - make_interval(secs => ${seconds})
      WHERE ${tx(key)} = ANY(${ids}::bigint[])`;
  });
}
