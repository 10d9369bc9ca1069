/**
 * Counting lines archived twice. A line the broker redelivers (after a
 * crash, a lost channel, another replica's) may already be in a complete
 * object: its first holder stored it and died before the ack. Such a line
 * is written again, never dropped: without a message id, a copy can't be
 * told from a second, identical line printed in the same millisecond, and
 * dropping that one would lose it. This counts them for the duplicates
 * metric instead: each archived line matches at most one candidate, so
 * repeated identical lines are counted as often as they are repeated. Pure.
 */
import type { ArchivedLine } from "./format.ts";

const keyOf = (l: ArchivedLine) => `${l.timestamp}\u0000${l.source}\u0000${l.message}`;

/** How many of `candidates` have an equal line (time, source, message) in `archived`, each archived line used once. */
export function countCopies(candidates: Iterable<ArchivedLine>, archived: Iterable<ArchivedLine>): number {
  const seen = new Map<string, number>();
  for (const l of archived) {
    const k = keyOf(l);
    seen.set(k, (seen.get(k) ?? 0) + 1);
  }
  let copies = 0;
  for (const l of candidates) {
    const k = keyOf(l);
    const n = seen.get(k) ?? 0;
    if (n === 0) continue;
    copies++;
    if (n === 1) seen.delete(k);
    else seen.set(k, n - 1);
  }
  return copies;
}
