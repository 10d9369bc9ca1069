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

  test("DATABASE_URL wins over the DB_* parts", () => {
    const r = loadConfig({ DATABASE_URL: "postgres://u@elsewhere/x", DB_HOST: "ignored" });
    expect(r.ok && r.config.postgresUrl).toBe("postgres://u@elsewhere/x");
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
