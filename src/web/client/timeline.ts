/**
 * The session's timeline above the log: every status move the processor
 * applied (SessionTimeline.GetSessionTimeline), oldest first, each as
 * "time from → to (exit N)"; a click jumps the log to that moment, as a
 * click on the activity strip does. The entries are built by a pure function
 * (tested); the element is built with DOM calls only (no inline style or
 * script: the page's CSP forbids them).
 */
import { localTime } from "./lines.ts";

export interface Transition {
  /** Unix ms (the database's clock). */
  at: number;
  from: string;
  to: string;
  exitCode?: number;
  reason: string;
  routingKey: string;
  bySessionId?: number;
}

export interface TimelineEntry {
  at: number;
  time: string;
  move: string;
  exit: string;
  /** The state moved to: the entry's colour class. */
  to: string;
  /** Why it moved, for the tooltip. */
  why: string;
}

const WHY: Record<string, (t: Transition) => string> = {
  message: (t) => `reported by the host (${t.routingKey})`,
  superseded: (t) => `stopped because session ${t.bySessionId ?? "?"} of the same game server config started running`,
  stale_sweep: () => "marked lost: no word from the host past the stale-session threshold",
};

/** The entries as shown, oldest first. Pure. */
export function timelineEntries(transitions: readonly Transition[], time: (ms: number) => string = localTime): TimelineEntry[] {
  return transitions.map((t) => ({
    at: t.at,
    time: time(t.at),
    move: `${t.from} → ${t.to}`,
    exit: t.exitCode === undefined ? "" : `exit ${t.exitCode}`,
    to: t.to,
    why: (WHY[t.reason] ?? (() => t.reason))(t),
  }));
}

export class TimelineBar {
  readonly el: HTMLOListElement;
  private shown = "";

  /** Placed just before `above` (the activity strip, else the log); `onPick` gets the clicked entry's time. */
  constructor(above: HTMLElement, onPick: (ms: number) => void) {
    this.el = document.createElement("ol");
    this.el.id = "timeline";
    this.el.className = "timeline";
    this.el.hidden = true;
    this.el.setAttribute("aria-label", "What happened to this session; click an entry to jump the log there");
    above.before(this.el);
    this.el.addEventListener("click", (ev) => {
      const entry = (ev.target as HTMLElement).closest<HTMLElement>("button[data-ts]");
      if (entry) onPick(Number(entry.dataset.ts));
    });
  }

  render(entries: readonly TimelineEntry[]): void {
    const key = entries.map((e) => `${e.at}${e.move}${e.exit}`).join("|");
    if (key === this.shown) return; // the poll usually finds nothing new: keep focus and hover
    this.shown = key;
    const items = entries.map((e) => {
      const li = document.createElement("li");
      const b = document.createElement("button");
      b.type = "button";
      b.dataset.ts = String(e.at);
      b.className = `entry status-${e.to}`;
      b.title = `${e.why}; click to show the log at ${e.time}`;
      const time = document.createElement("time");
      time.dateTime = new Date(e.at).toISOString();
      time.textContent = e.time;
      const move = document.createElement("span");
      move.className = "move";
      move.textContent = e.move;
      b.append(time, " ", move);
      if (e.exit) {
        const exit = document.createElement("span");
        exit.className = "exit";
        exit.textContent = e.exit;
        b.append(" ", exit);
      }
      li.append(b);
      return li;
    });
    this.el.replaceChildren(...items);
    this.el.hidden = items.length === 0;
  }
}
