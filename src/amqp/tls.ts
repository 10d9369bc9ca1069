/**
 * TLS for amqps:// URLs, with the meaning of upstream's libs/go/rmq
 * (connection.go, TLS_CONFIGURATION.md), which the deployed manifests rely on:
 *
 * - RABBITMQ_SSL_VERIFY=false accepts any certificate: neither the chain nor
 *   the name is checked (Go's InsecureSkipVerify). Anything else verifies.
 * - RABBITMQ_CA_CERT_PATH is a PEM file whose CAs replace the system's
 *   (Go's RootCAs; Node's `ca` replaces its bundled list the same way).
 *   A file that cannot be read or holds no certificate stops the start, as
 *   upstream's "failed to read CA certificate" does.
 * - RABBITMQ_TLS_SERVER_NAME is the name sent as SNI and the name the
 *   certificate must carry, instead of the URL's host (Go's ServerName): a pod
 *   connects to a cluster-internal service name while the broker's
 *   certificate is issued for its public name.
 *
 * Plain amqp:// URLs ignore all three, as upstream does.
 *
 * Only node:fs, node:net and node:tls: Bun and Deno both provide them.
 * amqp-client 4.1 spreads these options into `tls.connect` after its own
 * (`servername`, `rejectUnauthorized`), so they win over its defaults; its
 * typings name only the `createSecureContext` subset, hence the cast at the
 * call site.
 */
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { checkServerIdentity, type ConnectionOptions, type PeerCertificate } from "node:tls";
import type { Config } from "../config.ts";
import { errorMessage } from "../util/errors.ts";

export type BrokerTlsSettings = Pick<Config, "rabbitmqSslVerify" | "rabbitmqCaCertPath" | "rabbitmqTlsServerName">;

export type BrokerTlsOptions = Pick<ConnectionOptions, "ca" | "rejectUnauthorized" | "servername" | "checkServerIdentity">;

/**
 * The options for `tls.connect`, or undefined for an amqp:// URL. Throws a
 * message naming the variable when the CA file is unusable: call it at start.
 */
export function brokerTlsOptions(url: string, settings: BrokerTlsSettings): BrokerTlsOptions | undefined {
  if (new URL(url).protocol !== "amqps:") return undefined;
  const options: BrokerTlsOptions = { rejectUnauthorized: settings.rabbitmqSslVerify };
  if (settings.rabbitmqCaCertPath) options.ca = readCa(settings.rabbitmqCaCertPath);
  const name = settings.rabbitmqTlsServerName;
  if (name) {
    // SNI may not carry an IP address (RFC 6066 §3; Node warns and drops
    // it), so an IP is only used for the certificate check.
    options.servername = isIP(name) ? "" : name;
    // The check itself is pinned to the configured name rather than left to
    // whichever of `servername`/`host` a runtime consults.
    options.checkServerIdentity = (_host: string, cert: PeerCertificate) => checkServerIdentity(name, cert);
  }
  return options;
}

function readCa(path: string): string {
  let pem: string;
  try {
    pem = readFileSync(path, "utf8");
  } catch (err) {
    throw new Error(`RABBITMQ_CA_CERT_PATH=${path}: cannot read the CA certificate: ${errorMessage(err)}`);
  }
  if (!pem.includes("-----BEGIN CERTIFICATE-----")) {
    throw new Error(`RABBITMQ_CA_CERT_PATH=${path}: holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  }
  return pem;
}

/**
 * A hint for the log when a connect failed on the broker's certificate: the
 * TLS library's message alone ("unable to verify the first certificate")
 * does not say which setting fixes it.
 */
export function certificateHint(message: string): string | undefined {
  if (!/certificate|self[- ]signed|altnames|CERT_|issuer/i.test(message)) return undefined;
  return "the broker's TLS certificate was not accepted: set RABBITMQ_CA_CERT_PATH to the CA that signed it, RABBITMQ_TLS_SERVER_NAME to the name it was issued for, or (development only) RABBITMQ_SSL_VERIFY=false";
}
