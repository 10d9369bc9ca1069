import { expect, test } from "bun:test";
import { failureKind, isConnectionLoss, isPermanentDatabaseError } from "./errors.ts";

const err = (code: string) => Object.assign(new Error(code), { code });

test("values the database refuses are permanent; timeouts, deadlocks and lost connections are not", () => {
  for (const code of ["22003", "22P02", "23505", "23503"]) expect(isPermanentDatabaseError(err(code))).toBe(true);
  for (const code of ["57014", "40001", "40P01", "08006", "57P01", "53300", "CONNECTION_CLOSED"]) expect(isPermanentDatabaseError(err(code))).toBe(false);
  expect(isPermanentDatabaseError(new Error("no code"))).toBe(false);
});

test("a lost or refused connection is told apart from a failed statement", () => {
  for (const code of ["CONNECTION_CLOSED", "CONNECTION_DESTROYED", "CONNECT_TIMEOUT", "ECONNREFUSED", "ECONNRESET", "08006", "08001", "57P01", "57P03"]) {
    expect(isConnectionLoss(err(code))).toBe(true);
  }
  // A statement timeout, a deadlock and bad values are about the statement.
  for (const code of ["57014", "40P01", "40001", "22P02", "23505"]) expect(isConnectionLoss(err(code))).toBe(false);
  expect(isConnectionLoss(null)).toBe(false);
  expect(isConnectionLoss(new Error("plain"))).toBe(false);
});

test("a failure's kind: the values' fault at once; otherwise unexplained until the database is asked", () => {
  expect(failureKind(err("22003"))).toBe("bad_values");
  expect(failureKind(err("22003"), true)).toBe("bad_values");
  expect(failureKind(err("57014"))).toBe("unexplained");
  expect(failureKind(err("CONNECTION_CLOSED"))).toBe("unexplained");
  expect(failureKind(err("CONNECTION_CLOSED"), false)).toBe("outage_over");
  expect(failureKind(err("CONNECTION_CLOSED"), true)).toBe("connection_lost");
  expect(failureKind(err("57014"), true)).toBe("statement_failed");
});
