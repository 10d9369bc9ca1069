import { describe, expect, test } from "bun:test";
import { countCopies } from "./duplicates.ts";

const l = (timestamp: number, message: string, source = "stdout") => ({ timestamp, source, message });

describe("countCopies", () => {
  test("counts candidates already archived, by time, source and message", () => {
    const archived = [l(1, "a"), l(2, "b"), l(3, "c", "stderr")];
    expect(countCopies([l(1, "a"), l(2, "x"), l(3, "c", "stdout"), l(3, "c", "stderr")], archived)).toBe(2);
    expect(countCopies([], archived)).toBe(0);
    expect(countCopies([l(1, "a")], [])).toBe(0);
  });

  test("each archived line matches one candidate: repeats count as often as they were archived", () => {
    const archived = [l(5, ""), l(5, "")];
    expect(countCopies([l(5, ""), l(5, ""), l(5, "")], archived)).toBe(2);
  });

  test("messages that only differ after a separator-like character stay apart", () => {
    expect(countCopies([l(1, "a\u0000stdout")], [l(1, "a")])).toBe(0);
  });
});
