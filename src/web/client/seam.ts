/**
 * Where the archived history meets the live stream, without a duplicate or
 * a gap. Pure: the page (and the whole-session download) feed it lines.
 *
 * What each side holds. The live stream replays the session's ring (its
 * last 500 lines, numbered) then follows; the archive holds every line, but
 * only up to a minute or two ago. Lines carry timestamp, source and message
 * and no id the two sides share, and a host flushes up to 50 lines stamped
 * with the same millisecond.
 *
 * The rule. Let T0 be the timestamp of the first live line. From the
 * archive, lines before T0 are shown and lines after T0 are not (the live
 * side has them). At T0 itself the two sides overlap by an unknown number of
 * lines, so lines are matched by their whole (timestamp, source, message):
 * each archived line at T0 cancels one identical live line at T0 and the
 * other way round, whichever arrived first; so of each distinct line at T0
 * the page shows as many copies as the side with more of them holds —
 * max(archived, live) — which is the true count whenever one side holds all
 * the copies the other does.
 *
 * Known limitation: two or more identical lines (same millisecond, source
 * and text) of which the archive holds some and the ring others, and
 * neither all, are shown fewer times than they were published. It needs
 * identical lines in one millisecond split by the ring's 500-line edge and
 * by an archive part boundary at once. (The rule also takes a session's
 * timestamps to rise in the order its lines arrive — one host, one clock: a
 * line stamped after T0 that arrived before the ring's first is not shown.)
 *
 * Gap. Until the archive holds a line after T0, lines older than the ring's
 * first may not be archived yet: the page keeps asking for them
 * (history.ts) and the download says so (export.ts).
 */

export interface SeamLine {
  readonly timestamp: number;
  readonly source: string;
  readonly message: string;
}

const keyOf = (l: SeamLine) => `${l.source}\u0000${l.message}`;

/** Copies of one (source, message) at T0: shown or hidden, from each side. */
interface Copies {
  liveShown: number;
  liveHidden: number;
  archivedShown: number;
  archivedHidden: number;
}

export class Seam {
  /**
   * Timestamp of the first live line; undefined until one arrives. Set by
   * the first acceptLive, or beforehand by a caller that first passes the
   * archived lines it already shows through filterArchived (history.ts), so
   * those keep their place and the first live lines are the copies hidden.
   */
  t0: number | undefined;
  // Only lines at T0 are counted: a few hundred keys at most.
  readonly #atT0 = new Map<string, Copies>();

  #copies(line: SeamLine): Copies {
    const key = keyOf(line);
    let c = this.#atT0.get(key);
    if (!c) this.#atT0.set(key, (c = { liveShown: 0, liveHidden: 0, archivedShown: 0, archivedHidden: 0 }));
    return c;
  }

  /** A live line: true to show it, false when an archived copy is already shown. The first one fixes T0. */
  acceptLive(line: SeamLine): boolean {
    this.t0 ??= line.timestamp;
    if (line.timestamp !== this.t0) return true;
    const c = this.#copies(line);
    // An archived copy shown and not yet standing for a live one: this is it.
    if (c.archivedShown > c.liveHidden) return (c.liveHidden++, false);
    c.liveShown++;
    return true;
  }

  /** Archived lines, in order: the ones to show (before T0, and at T0 those the live side has not shown). */
  filterArchived<T extends SeamLine>(lines: readonly T[]): T[] {
    const t0 = this.t0;
    if (t0 === undefined) return [...lines];
    const out: T[] = [];
    for (const line of lines) {
      if (line.timestamp > t0) continue;
      if (line.timestamp === t0) {
        const c = this.#copies(line);
        // A live copy shown and not yet matched by an archived one: this is it.
        if (c.liveShown > c.archivedHidden) {
          c.archivedHidden++;
          continue;
        }
        c.archivedShown++;
      }
      out.push(line);
    }
    return out;
  }

  /**
   * The archived lines shown so far were taken off the page (a jump
   * elsewhere): forget them, so that reading the archive up to T0 again
   * shows each line once more (live copies hidden behind them stay hidden;
   * the archived copies come back in their place).
   */
  forgetArchived(): void {
    for (const c of this.#atT0.values()) c.archivedShown = c.archivedHidden = 0;
  }

  /** True when `line` lies at or after T0 (the live side covers it). */
  reached(line: SeamLine): boolean {
    return this.t0 !== undefined && line.timestamp >= this.t0;
  }
}

/**
 * The whole session as one list: `archived` (oldest first, possibly more
 * than the live side covers) joined to `live` by the rule above. What the
 * page shows is built incrementally by the same Seam; this is the one-shot
 * form, for the download and the tests.
 */
export function joinAtSeam<T extends SeamLine>(archived: readonly T[], live: readonly T[]): T[] {
  const seam = new Seam();
  const shownLive = live.filter((l) => seam.acceptLive(l));
  return [...seam.filterArchived(archived), ...shownLive];
}
