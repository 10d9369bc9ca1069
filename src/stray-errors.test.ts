import { expect, test } from "bun:test";
import { judgeStrayRejection } from "./stray-errors.ts";

test("driver errors of a dead connection are known traps; anything else is unexpected", () => {
  expect(judgeStrayRejection(Object.assign(new Error("write CONNECTION_ENDED"), { code: "CONNECTION_ENDED" }))).toBe("known_driver_trap");
  expect(judgeStrayRejection(Object.assign(new Error("terminating connection"), { code: "57P01" }))).toBe("known_driver_trap");
  expect(judgeStrayRejection(Object.assign(new Error("Connection closed"), { name: "AMQPError" }))).toBe("known_driver_trap");
  expect(judgeStrayRejection(new TypeError("undefined is not a function"))).toBe("unexpected");
  expect(judgeStrayRejection("a string")).toBe("unexpected");
  expect(judgeStrayRejection(Object.assign(new Error("x"), { code: "23505" }))).toBe("unexpected");
});
