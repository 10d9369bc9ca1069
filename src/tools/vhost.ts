/**
 * A RabbitMQ vhost made on demand (for `demo`), by what an operator's box
 * has: the management API on the broker's host (port 15672, the AMQP URL's
 * credentials), else `rabbitmqctl` when the broker runs here; when neither
 * works, the commands to run. Creating a vhost that exists changes nothing.
 */
import { execFile } from "node:child_process";
import { errorMessage } from "../util/errors.ts";

// The management plugin's default port.
const MANAGEMENT_PORT = 15672;
// 5 s per attempt: a local broker answers in milliseconds.
const ATTEMPT_MS = 5_000;

/** The AMQP URL with `vhost` as its path. */
export function urlWithVhost(amqpUrl: string, vhost: string): string {
  const u = new URL(amqpUrl);
  u.pathname = "/" + encodeURIComponent(vhost);
  return u.toString();
}

function credentials(amqpUrl: string): { user: string; password: string; host: string; tls: boolean } {
  const u = new URL(amqpUrl);
  return { user: decodeURIComponent(u.username || "guest"), password: decodeURIComponent(u.password || "guest"), host: u.hostname, tls: u.protocol === "amqps:" };
}

/** What to run by hand, for the message when nothing here could. */
export function howToCreateVhost(amqpUrl: string, vhost: string): string {
  const { user, host, tls } = credentials(amqpUrl);
  const api = `${tls ? "https" : "http"}://${host}:${MANAGEMENT_PORT}/api`;
  return (
    `on the broker's host: rabbitmqctl add_vhost ${vhost} && rabbitmqctl set_permissions -p ${vhost} ${user} '.*' '.*' '.*'` +
    ` — or with the management API: curl -u ${user} -X PUT ${api}/vhosts/${encodeURIComponent(vhost)} && curl -u ${user} -X PUT -H 'content-type: application/json' -d '{"configure":".*","write":".*","read":".*"}' ${api}/permissions/${encodeURIComponent(vhost)}/${encodeURIComponent(user)}`
  );
}

export type VhostResult = { ok: true; how: string } | { ok: false; why: string[] };

/** Creates `vhost` and gives the URL's user all rights on it. */
export async function ensureVhost(amqpUrl: string, vhost: string): Promise<VhostResult> {
  const why: string[] = [];
  try {
    await throughManagementApi(amqpUrl, vhost);
    return { ok: true, how: "the management API" };
  } catch (err) {
    why.push(`management API: ${errorMessage(err)}`);
  }
  try {
    const { user } = credentials(amqpUrl);
    await rabbitmqctl(["-q", "add_vhost", vhost]).catch((err: unknown) => {
      if (!/already exists|vhost_already_exists/i.test(errorMessage(err))) throw err;
    });
    await rabbitmqctl(["-q", "set_permissions", "-p", vhost, user, ".*", ".*", ".*"]);
    return { ok: true, how: "rabbitmqctl" };
  } catch (err) {
    why.push(`rabbitmqctl: ${errorMessage(err)}`);
  }
  return { ok: false, why };
}

async function throughManagementApi(amqpUrl: string, vhost: string): Promise<void> {
  const { user, password, host, tls } = credentials(amqpUrl);
  const api = `${tls ? "https" : "http"}://${host.includes(":") ? `[${host}]` : host}:${MANAGEMENT_PORT}/api`;
  const headers = { authorization: `Basic ${btoa(`${user}:${password}`)}`, "content-type": "application/json" };
  const put = async (path: string, body: unknown) => {
    const res = await fetch(`${api}${path}`, { method: "PUT", headers, body: JSON.stringify(body), signal: AbortSignal.timeout(ATTEMPT_MS) });
    if (!res.ok) throw new Error(`PUT ${path}: HTTP ${res.status}`);
  };
  await put(`/vhosts/${encodeURIComponent(vhost)}`, {});
  await put(`/permissions/${encodeURIComponent(vhost)}/${encodeURIComponent(user)}`, { configure: ".*", write: ".*", read: ".*" });
}

function rabbitmqctl(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile("rabbitmqctl", args, { timeout: ATTEMPT_MS * 4 }, (err, _stdout, stderr) => {
      if (err) reject(new Error(`${String(stderr).trim() || err.message}`));
      else resolve();
    });
  });
}
