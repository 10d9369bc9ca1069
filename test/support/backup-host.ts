/**
 * A host manager's backup side, simulated as UPSTREAM.md §1 and
 * H/backup.go describe it: consumes `command.host.<id>.backup` from
 * `manman`, drops a command whose created_at is over an hour old, makes a
 * real `tar -czf` of a small directory, PUTs it to the pre-signed URL with
 * `Content-Type: application/gzip` and an explicit length, and publishes
 * `status.backup.<id>`: `{"backup_id","s3_url":"s3://"+key,"status":"completed"}`
 * on success, `{"backup_id","status":"failed","error_message"}` when the
 * upload fails. One queue for every server (`command.host.*.backup`), so a
 * test sees the commands of many hosts.
 */
import { AMQPClient, type AMQPChannel } from "@cloudamqp/amqp-client";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface BackupCommandBody {
  backup_id: number;
  sgc_id: number;
  volume_type: string;
  volume_host_path: string;
  volume_name: string;
  backup_path: string;
  s3_key: string;
  presigned_url: string;
  pre_action_commands: string[];
  created_at: string;
}

export interface ReceivedCommand {
  routingKey: string;
  raw: string;
  body: BackupCommandBody;
  expiration: string | undefined;
  contentType: string | undefined;
  /** What the host did with it. */
  outcome?: { status: "completed"; bytes: number } | { status: "failed"; error: string } | { status: "dropped" };
}

// The host's own rule (H/rmq/consumer.go:184-196): a command older than 1 h is dropped.
const MAX_COMMAND_AGE_MS = 3_600_000;

export class SimulatedBackupHost {
  readonly commands: ReceivedCommand[] = [];
  private readonly tarball: Uint8Array;

  private constructor(
    private readonly client: AMQPClient,
    private readonly ch: AMQPChannel,
  ) {
    // A real tarball of a small save directory, as `tar -czf - -C <volume> <backup_path>` makes it.
    const dir = mkdtempSync(join(tmpdir(), "backup-host-"));
    try {
      execFileSync("mkdir", ["-p", join(dir, "saves")]);
      writeFileSync(join(dir, "saves", "world.dat"), "x".repeat(10_000) + Math.random());
      this.tarball = new Uint8Array(execFileSync("tar", ["-czf", "-", "-C", dir, "saves"]));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  static async connect(url: string): Promise<SimulatedBackupHost> {
    const client = new AMQPClient(url);
    await client.connect();
    const ch = await client.channel();
    const host = new SimulatedBackupHost(client, ch);
    await ch.exchangeDeclare("manman", "topic", { durable: true });
    const q = await ch.queueDeclare("", { exclusive: true, autoDelete: true });
    await ch.queueBind(q.name, "manman", "command.host.*.backup");
    await ch.basicConsume(q.name, { noAck: true }, (m) => {
      const raw = m.bodyString() ?? "";
      const cmd: ReceivedCommand = {
        routingKey: m.routingKey, raw, body: JSON.parse(raw) as BackupCommandBody,
        expiration: m.properties.expiration, contentType: m.properties.contentType,
      };
      host.commands.push(cmd);
      void host.handle(cmd);
    });
    return host;
  }

  /** The size of every tarball this host uploads. */
  get tarballBytes(): number {
    return this.tarball.byteLength;
  }

  commandsFor(backupId: number): ReceivedCommand[] {
    return this.commands.filter((c) => c.body.backup_id === backupId);
  }

  private async handle(cmd: ReceivedCommand): Promise<void> {
    const c = cmd.body;
    if (!c.presigned_url) return; // upstream returns an error and publishes nothing
    const created = Date.parse(c.created_at);
    if (created > 0 && Date.now() - created > MAX_COMMAND_AGE_MS) {
      cmd.outcome = { status: "dropped" };
      return;
    }
    try {
      const res = await fetch(c.presigned_url, {
        method: "PUT",
        headers: { "Content-Type": "application/gzip", "Content-Length": String(this.tarball.byteLength) },
        body: this.tarball as Uint8Array<ArrayBuffer>,
        signal: AbortSignal.timeout(10_000),
      });
      const text = await res.text();
      if (res.status >= 300) return this.fail(cmd, `S3 upload returned status ${res.status}: ${text.trim()}`);
    } catch (err) {
      return this.fail(cmd, `failed to upload to S3: ${(err as Error).message}`);
    }
    cmd.outcome = { status: "completed", bytes: this.tarball.byteLength };
    await this.publish(c.backup_id, { backup_id: c.backup_id, s3_url: `s3://${c.s3_key}`, status: "completed" });
  }

  private async fail(cmd: ReceivedCommand, error: string): Promise<void> {
    cmd.outcome = { status: "failed", error };
    await this.publish(cmd.body.backup_id, { backup_id: cmd.body.backup_id, status: "failed", error_message: error });
  }

  private async publish(backupId: number, body: Record<string, unknown>): Promise<void> {
    await this.ch.basicPublish("manman", `status.backup.${backupId}`, JSON.stringify(body), { contentType: "application/json", deliveryMode: 2, timestamp: new Date() });
  }

  async close(): Promise<void> {
    await this.client.close().catch(() => {});
  }
}
