import { describe, expect, test } from "bun:test";
import {
  BACKUP_COMMAND_PROPERTIES, backupCommandRoutingKey, backupKey, renderBackupCommand, renderPreActions, schedulerSwitch, staleBackupError,
  type BackupTarget,
} from "./backup-schedule.ts";

const target: BackupTarget = {
  backupConfigId: 2, sgcId: 3, serverId: 42, sessionId: 11, volumeId: 5, volumeName: "world", volumeType: "named",
  hostSubpath: null, backupPath: "saves", actions: [],
};

describe("the backup command", () => {
  test("key and routing key as upstream lays them out", () => {
    expect(backupKey(3, 2, 7)).toBe("backups/3/2/7.tar.gz");
    expect(backupCommandRoutingKey(42)).toBe("command.host.42.backup");
  });
  test("the body has upstream's fields in its struct order, a real created_at, and a null host path as empty", () => {
    const body = renderBackupCommand({
      backupId: 7, target, s3Key: "backups/3/2/7.tar.gz", presignedUrl: "https://s3/x?X-Amz-Signature=ab",
      preActionCommands: ["save-all"], createdAt: new Date("2026-01-02T15:04:05.123Z"),
    });
    expect(body).toBe(
      '{"backup_id":7,"sgc_id":3,"volume_type":"named","volume_host_path":"","volume_name":"world","backup_path":"saves",' +
        '"s3_key":"backups/3/2/7.tar.gz","presigned_url":"https://s3/x?X-Amz-Signature=ab","pre_action_commands":["save-all"],' +
        '"created_at":"2026-01-02T15:04:05.123Z"}',
    );
    const bind = JSON.parse(renderBackupCommand({ backupId: 1, target: { ...target, volumeType: "bind", hostSubpath: "data" }, s3Key: "k", presignedUrl: "u", preActionCommands: [], createdAt: new Date() }));
    expect(bind.volume_host_path).toBe("data");
    expect(bind.pre_action_commands).toEqual([]); // [] as Go's make([]string, 0), never null
  });
  test("published with a one-hour AMQP expiration", () => {
    expect(BACKUP_COMMAND_PROPERTIES).toEqual({ expiration: "3600000" });
  });
});

describe("pre-action commands", () => {
  test("rendered in order with nil data; one that can't be rendered is left out and named", () => {
    const r = renderPreActions([
      { actionId: 1, template: "say Backing up {{.world}}" },
      { actionId: 2, template: "{{printf \"%s\" .x}}" },
      { actionId: 3, template: "save-all" },
    ]);
    expect(r.commands).toEqual(["say Backing up <no value>", "save-all"]);
    expect(r.skipped).toEqual([{ actionId: 2, error: expect.stringContaining("unsupported") }]);
  });
});

describe("whether the scheduler runs", () => {
  const s3 = { s3Bucket: "b", s3AccessKey: "k", s3SecretKey: "s" };
  test("on with S3 settings and the API's tables", () => {
    expect(schedulerSwitch({ ...s3, missingTables: [] })).toEqual({ enabled: true });
  });
  test("off without S3, naming what is unset", () => {
    const off = schedulerSwitch({ s3Bucket: "b", missingTables: [] });
    expect(off).toEqual({ enabled: false, reason: expect.stringContaining("S3_ACCESS_KEY, S3_SECRET_KEY unset") });
  });
  test("off without the API's tables, naming them", () => {
    const off = schedulerSwitch({ ...s3, missingTables: ["backup_configs", "backups"] });
    expect(off).toEqual({ enabled: false, reason: expect.stringContaining("no backup_configs, backups") });
  });
});

test("a stale backup's error message says why and what it was", () => {
  expect(staleBackupError(2, "running")).toBe(
    "no completed or failed status from the host within 2 h of the backup's creation (it was running); marked failed by the processor's stale sweep",
  );
});
