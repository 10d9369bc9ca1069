import { expect, test } from "bun:test";
import { wholeSessionText } from "./export.ts";
import type { HistoryPage, HistoryRead } from "./history.ts";
import { LineStore } from "./lines.ts";
import type { SeamLine } from "./seam.ts";

/** FORWARD-only fake: cursor = index of the last line returned. */
const archiveOf = (lines: SeamLine[], pageSize: number) => async ({ cursor }: HistoryRead): Promise<HistoryPage> => {
  const from = cursor === undefined ? 0 : Number(cursor) + 1;
  const page = lines.slice(from, from + pageSize);
  return { lines: page, nextCursor: String(from + page.length - 1), prevCursor: String(from), hasMore: from + page.length < lines.length };
};
const session = Array.from({ length: 30 }, (_, i) => ({ timestamp: 100 + (i < 20 ? i : 20), source: i % 4 ? "stdout" : "stderr", message: `line ${i}` }));
const texts = (parts: string[]) => parts.join("").split("\n").filter(Boolean).map((l) => l.replace(/^\S+ \S+ \S+\s+/, ""));

test("the whole session: the archive read to the first live line, then the live lines, each once", async () => {
  const store = new LineStore(100);
  session.slice(25).forEach((l, i) => store.add({ seq: i + 1, ...l })); // the ring: inside the last millisecond's run
  store.add({ seq: 0, timestamp: 999, source: "notice", message: "a notice is not a log line" });
  const out = await wholeSessionText(archiveOf(session.slice(0, 28), 4), store);
  expect(texts(out.parts)).toEqual(session.map((l) => l.message));
  expect(out.behind).toBeUndefined();
});

test("an archive behind the live lines: what there is, and the span that may be missing", async () => {
  const store = new LineStore(100);
  session.slice(25).forEach((l, i) => store.add({ seq: i + 1, ...l }));
  const out = await wholeSessionText(archiveOf(session.slice(0, 10), 4), store);
  expect(texts(out.parts)).toEqual([...session.slice(0, 10), ...session.slice(25)].map((l) => l.message));
  expect(out.behind).toEqual({ from: 109, to: 120 });
});

test("under the page's filter", async () => {
  const store = new LineStore(100);
  store.setFilter({ sources: new Set(["stderr"]), query: "" });
  const out = await wholeSessionText(archiveOf(session, 7), store);
  expect(texts(out.parts)).toEqual(session.filter((l) => l.source === "stderr").map((l) => l.message));
});
