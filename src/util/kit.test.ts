import { describe, expect, test } from "bun:test";
import { aborted, onAbort } from "./abort.ts";
import { errorMessage } from "./errors.ts";
import { TimeoutError, settlesWithin, withTimeout } from "./timeout.ts";

describe("the small kit", () => {
  test("onAbort runs at once for an aborted signal, once later otherwise, and can be removed", async () => {
    let n = 0;
    onAbort(AbortSignal.abort(), () => n++);
    expect(n).toBe(1);
    const c = new AbortController();
    const off = onAbort(c.signal, () => n++);
    const c2 = new AbortController();
    onAbort(c2.signal, () => n++)();
    c.abort();
    c2.abort();
    off();
    expect(n).toBe(2);
    await aborted(c.signal);
  });
  test("withTimeout passes results and errors through, and times out with a TimeoutError", async () => {
    expect(await withTimeout(Promise.resolve(5), 100, "x")).toBe(5);
    await expect(withTimeout(Promise.reject(new Error("boom")), 100, "x")).rejects.toThrow("boom");
    await expect(withTimeout(new Promise(() => {}), 10, "no answer")).rejects.toBeInstanceOf(TimeoutError);
    expect(await settlesWithin(Promise.reject(new Error("x")), 100)).toBe(true);
    expect(await settlesWithin(new Promise(() => {}), 10)).toBe(false);
  });
  test("errorMessage", () => {
    expect(errorMessage(new Error("a"))).toBe("a");
    expect(errorMessage("b")).toBe("b");
  });
});
