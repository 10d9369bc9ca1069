import { describe, expect, test } from "bun:test";
import { loadConfig, describeSettings, SETTINGS } from "./config.ts";

describe("configuration from the environment", () => {
  test("defaults work on a developer box", () => {
    const r = loadConfig({});
    if (!r.ok) throw new Error(r.problems.join("\n"));
    expect(r.config.rabbitmqUrl).toBe("amqp://guest:guest@localhost:5672/");
    expect(r.config.postgresUrl).toBe("postgres://postgres@localhost:5432/manman?sslmode=disable");
    expect(r.config.queueName).toBe("processor-events");
    expect(r.config.healthCheckPort).toBe(8080);
    expect(r.config.grpcPort).toBe(50053);
    expect(r.config.staleHostThresholdSeconds).toBe(10);
    expect(r.config.staleSessionThresholdSeconds).toBe(30);
    expect(r.config.logBufferTtl).toBe(180);
    expect(r.config.logBufferMaxMessages).toBe(500);
    expect(r.config.prefetch).toBeGreaterThan(1);
  });

  test("the DB_* parts build the URL, escaped", () => {
    const r = loadConfig({ DB_HOST: "db.internal", DB_PORT: "6432", DB_USER: "man man", DB_PASSWORD: "p@ss/word", DB_NAME: "mm", DB_SSL_MODE: "require" });
    expect(r.ok && r.config.postgresUrl).toBe("postgres://man%20man:p%40ss%2Fword@db.internal:6432/mm?sslmode=require");
  });

  test("DATABASE_URL wins over PG_DATABASE_URL, which wins over the DB_* parts", () => {
    const both = loadConfig({ DATABASE_URL: "postgres://u@elsewhere/x", PG_DATABASE_URL: "postgres://u@pg/y", DB_HOST: "ignored" });
    expect(both.ok && both.config.postgresUrl).toBe("postgres://u@elsewhere/x");
    const pg = loadConfig({ PG_DATABASE_URL: "postgresql://u@pg/y", DB_HOST: "ignored" });
    expect(pg.ok && pg.config.postgresUrl).toBe("postgresql://u@pg/y");
    const bad = loadConfig({ PG_DATABASE_URL: "mysql://u@pg/y" });
    expect(!bad.ok && bad.problems).toEqual([expect.stringContaining("PG_DATABASE_URL=(hidden): must start with postgres:// or postgresql://")]);
  });

  test("an empty or blank value means unset, for every variable", () => {
    const blank = Object.fromEntries(Object.values(SETTINGS).map((s, i) => [s.env, i % 2 ? "" : " \t "]));
    const r = loadConfig(blank);
    if (!r.ok) throw new Error(r.problems.join("\n"));
    const defaults = loadConfig({});
    if (!defaults.ok) throw new Error(defaults.problems.join("\n"));
    expect(r.config).toEqual(defaults.config);
    // As the deployed manifests write it: S3_ENDPOINT: "" is no endpoint.
    const s3 = loadConfig({ S3_ENDPOINT: "", DATABASE_URL: "", PG_DATABASE_URL: "postgres://u@pg/y", HEALTH_CHECK_PORT: "" });
    expect(s3.ok && s3.config.s3Endpoint).toBeUndefined();
    expect(s3.ok && s3.config.postgresUrl).toBe("postgres://u@pg/y");
    expect(s3.ok && s3.config.healthCheckPort).toBe(8080);
  });

  test("the RabbitMQ TLS settings: verify by default, no CA, no server name", () => {
    const r = loadConfig({});
    expect(r.ok && [r.config.rabbitmqSslVerify, r.config.rabbitmqCaCertPath, r.config.rabbitmqTlsServerName]).toEqual([true, undefined, undefined]);
    const set = loadConfig({ RABBITMQ_URL: "amqps://u:p@rmq:5671/v", RABBITMQ_SSL_VERIFY: "false", RABBITMQ_CA_CERT_PATH: " /etc/rmq/ca.crt ", RABBITMQ_TLS_SERVER_NAME: "rmq.example.com" });
    expect(set.ok && [set.config.rabbitmqSslVerify, set.config.rabbitmqCaCertPath, set.config.rabbitmqTlsServerName]).toEqual([false, "/etc/rmq/ca.crt", "rmq.example.com"]);
    const bad = loadConfig({ RABBITMQ_SSL_VERIFY: "sometimes" });
    expect(!bad.ok && bad.problems).toEqual(['RABBITMQ_SSL_VERIFY="sometimes": must be true or false']);
  });

  test("every S3 name of the deployed services is accepted", () => {
    const r = loadConfig({ S3_BUCKET: "b", S3_REGION: "r", S3_ENDPOINT: "http://minio:9000", S3_PUBLIC_ENDPOINT: "https://s3.example.com", S3_ACCESS_KEY: "a", S3_SECRET_KEY: "s" });
    expect(r.ok && [r.config.s3Bucket, r.config.s3Region, r.config.s3Endpoint, r.config.s3PublicEndpoint, r.config.s3AccessKey, r.config.s3SecretKey]).toEqual(["b", "r", "http://minio:9000", "https://s3.example.com", "a", "s"]);
  });

  test("every problem is reported, one line each, naming the variable", () => {
    const r = loadConfig({ PREFETCH: "0", HEALTH_CHECK_PORT: "http", RABBITMQ_URL: "http://x", LOG_LEVEL: "loud", DEBUG_LOG_OUTPUT: "maybe", DB_PASSWORD: "secret", DB_PORT: "70000" });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.problems).toHaveLength(6);
    const by = (name: string) => r.problems.find((p) => p.startsWith(`${name}=`));
    expect(by("PREFETCH")).toContain("at least 1");
    expect(by("HEALTH_CHECK_PORT")).toContain("whole number");
    expect(by("RABBITMQ_URL")).toContain("amqp://");
    expect(by("RABBITMQ_URL")).toContain("(hidden)");
    expect(by("LOG_LEVEL")).toContain("debug, info, warn or error");
    expect(by("DEBUG_LOG_OUTPUT")).toContain("true or false");
    expect(by("DB_PORT")).toContain("at most 65535");
  });

  test("booleans and lists", () => {
    const r = loadConfig({ DEBUG_LOG_OUTPUT: "TRUE", LOG_ACCESS_TOKEN: " a, b ,," });
    expect(r.ok && r.config.debugLogOutput).toBe(true);
    expect(r.ok && r.config.logAccessTokens).toEqual(["a", "b"]);
  });

  test("--help lists every variable", () => {
    const lines = describeSettings().join("\n");
    for (const s of Object.values(SETTINGS)) expect(lines).toContain(s.env);
  });
});
