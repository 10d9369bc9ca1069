import { describe, expect, test } from "bun:test";
import { percent, Progress, type Terminal } from "./progress.ts";

function stream(isTTY: boolean): Terminal & { text: string } {
  const s = { text: "", isTTY, columns: 40, write: (t: string) => void (s.text += t) };
  return s;
}

function setup(isTTY: boolean) {
  let now = 0;
  const out = stream(isTTY);
  const err = stream(isTTY);
  const p = new Progress({ stdout: out, stderr: err }, () => now, 5000);
  return { p, out, err, tick: (ms: number) => void (now += ms) };
}

describe("on a terminal", () => {
  test("progress is one line on stderr, redrawn in place; result lines on stdout clear it first and draw it again after", () => {
    const { p, out, err, tick } = setup(true);
    p.update("replayed 1 of 3");
    tick(200);
    p.print("replayed #1 status.session.7 -> manman");
    p.update("replayed 2 of 3");
    expect(out.text).toBe("replayed #1 status.session.7 -> manman\n");
    // drawn, cleared for the result line, drawn again; the update 0 ms after a draw waits for the next redraw
    expect(err.text).toBe("\r\x1b[2Kreplayed 1 of 3\r\x1b[2K\r\x1b[2Kreplayed 1 of 3");
    tick(100);
    p.update("replayed 3 of 3");
    expect(err.text.endsWith("\r\x1b[2Kreplayed 3 of 3")).toBe(true);
    p.done();
    expect(err.text.endsWith("\r\x1b[2K")).toBe(true);
    expect(err.text).not.toContain("\n");
  });

  test("a line wider than the terminal is cut, so it never wraps", () => {
    const { p, err } = setup(true);
    p.update("x".repeat(100));
    expect(err.text).toBe("\r\x1b[2K" + "x".repeat(38) + "…");
  });
});

describe("not on a terminal", () => {
  test("a plain progress line at most every 5 s, none for work shorter than that, and no control characters", () => {
    const { p, out, err, tick } = setup(false);
    p.update("1 of 9");
    tick(4999);
    p.update("2 of 9");
    expect(err.text).toBe("");
    tick(1);
    p.update("3 of 9");
    tick(1000);
    p.update("4 of 9");
    tick(4000);
    p.update("5 of 9");
    p.print("a result");
    p.done();
    expect(err.text).toBe("3 of 9\n5 of 9\n");
    expect(out.text).toBe("a result\n");
  });

  test("warnings go to stderr as plain lines", () => {
    const { p, err } = setup(false);
    p.warn("could not remove x");
    expect(err.text).toBe("could not remove x\n");
  });
});

test("percent", () => {
  expect(percent(1, 3)).toBe("33%");
  expect(percent(3, 3)).toBe("100%");
  expect(percent(0, 0)).toBe("");
});
