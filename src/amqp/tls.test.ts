import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { brokerTlsOptions, certificateHint } from "./tls.ts";

const dir = mkdtempSync(join(tmpdir(), "mm-tls-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const verify = { rabbitmqSslVerify: true };

describe("TLS options for the broker connection", () => {
  test("a plain amqp:// URL ignores every TLS setting, even an unreadable CA path", () => {
    expect(brokerTlsOptions("amqp://h/", { ...verify, rabbitmqCaCertPath: join(dir, "missing.pem") })).toBeUndefined();
  });

  test("amqps:// verifies by default with the system's CAs", () => {
    expect(brokerTlsOptions("amqps://h/", verify)).toEqual({ rejectUnauthorized: true });
    expect(brokerTlsOptions("amqps://h/", { rabbitmqSslVerify: false })).toEqual({ rejectUnauthorized: false });
  });

  test("the CA file replaces the trusted CAs; unreadable or not PEM is an error naming the variable", () => {
    const pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    writeFileSync(join(dir, "ca.pem"), pem);
    expect(brokerTlsOptions("amqps://h/", { ...verify, rabbitmqCaCertPath: join(dir, "ca.pem") })?.ca).toBe(pem);
    expect(() => brokerTlsOptions("amqps://h/", { ...verify, rabbitmqCaCertPath: join(dir, "missing.pem") })).toThrow(/^RABBITMQ_CA_CERT_PATH=.*missing\.pem: cannot read the CA certificate: .*ENOENT/);
    writeFileSync(join(dir, "key.pem"), "-----BEGIN PRIVATE KEY-----\n");
    expect(() => brokerTlsOptions("amqps://h/", { ...verify, rabbitmqCaCertPath: join(dir, "key.pem") })).toThrow(/holds no PEM certificate/);
  });

  test("the server name is sent as SNI unless it is an IP address, and always checked", () => {
    const named = brokerTlsOptions("amqps://10.0.0.1/", { ...verify, rabbitmqTlsServerName: "rmq.example.com" });
    expect(named?.servername).toBe("rmq.example.com");
    expect(typeof named?.checkServerIdentity).toBe("function");
    expect(brokerTlsOptions("amqps://h/", { ...verify, rabbitmqTlsServerName: "10.0.0.1" })?.servername).toBe("");
  });

  test("certificate failures get a hint naming the settings; other failures none", () => {
    expect(certificateHint("unable to verify the first certificate")).toContain("RABBITMQ_CA_CERT_PATH");
    expect(certificateHint("Hostname/IP does not match certificate's altnames: Host: x.")).toContain("RABBITMQ_TLS_SERVER_NAME");
    expect(certificateHint("connect ECONNREFUSED 127.0.0.1:5671")).toBeUndefined();
  });
});
