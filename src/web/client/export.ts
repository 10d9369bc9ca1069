/**
 * Download: the whole session as text — every archived line read from the
 * archive page by page (not only what the tab keeps), joined to the live
 * lines the tab holds by the seam rule (seam.ts), under the current source
 * filter and search. The viewer's own notices are left out. Built as a list
 * of strings, one per page, so a long session is never one huge array of
 * line objects.
 */
import { stripAnsi } from "./ansi.ts";
import type { ReadHistory } from "./history.ts";
import { lineAsText, type LineStore, type ViewerLine } from "./lines.ts";
import { Seam, type SeamLine } from "./seam.ts";

// 10,000 lines per read: the service's cap, so a long session takes few calls.
const DOWNLOAD_PAGE_LINES = 10_000;

const asLine = (l: SeamLine): ViewerLine => ({ id: -1, seq: 0, timestamp: l.timestamp, source: l.source, message: l.message, plain: stripAnsi(l.message) });

export interface SessionText {
  /** The text in parts, for a Blob. */
  parts: string[];
  /**
   * Set when the archive did not reach the first live line: lines after
   * `from` (undefined: the session's start) and before `to` may be missing
   * (the archive is a minute or two behind). Said on the page, not written
   * into the file, which holds log lines only.
   */
  behind?: { from?: number; to: number };
}

/** The session's text; `onProgress` gets the archived lines read so far. */
export async function wholeSessionText(read: ReadHistory, store: LineStore, onProgress: (lines: number) => void = () => {}): Promise<SessionText> {
  const live = store.live().filter((l) => l.seq > 0);
  const seam = new Seam();
  for (const l of live) seam.acceptLive(l);
  const parts: string[] = [];
  let cursor: string | undefined;
  let archived = 0;
  let reached = false;
  let lastArchived: number | undefined;
  for (;;) {
    const page = await read({ backward: false, cursor, limit: DOWNLOAD_PAGE_LINES });
    const kept = seam.filterArchived(page.lines).map(asLine).filter((l) => store.matches(l));
    if (kept.length > 0) parts.push(kept.map(lineAsText).join("\n") + "\n");
    archived += page.lines.length;
    onProgress(archived);
    const last = page.lines[page.lines.length - 1];
    if (last) lastArchived = last.timestamp;
    if (page.lines.some((l) => seam.reached(l))) reached = true;
    // Past T0 the live lines have it all; at T0 itself the next page may hold more of that millisecond.
    if (!page.hasMore || (seam.t0 !== undefined && page.lines.some((l) => l.timestamp > seam.t0!))) break;
    cursor = page.nextCursor;
  }
  const shown = live.filter((l) => store.matches(l));
  if (shown.length > 0) parts.push(shown.map(lineAsText).join("\n") + "\n");
  const first = live[0];
  return first && !reached ? { parts, behind: { from: lastArchived, to: first.timestamp } } : { parts };
}
