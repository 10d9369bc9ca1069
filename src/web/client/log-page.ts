/**
 * `/sessions/:id`: one session's whole log: the archived history
 * (page-history.ts, read from LogHistory as the reader scrolls up), then the
 * live lines. Streams StreamSessionLogs and, on any end or error,
 * reconnects with backoff, resuming after the last sequence number it kept
 * (a new server process starts from 0: see resume.ts). Each live line
 * passes the seam first (seam.ts), so a line both archived and still in the
 * live buffer shows once.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { askForToken, isUnauthenticated, logs, pause, readHistory, sessions, showConnection, timeline } from "./api.ts";
import { wholeSessionText } from "./export.ts";
import { PageHistory } from "./page-history.ts";
import { LineStore, SOURCES, lineAsText, localTime } from "./lines.ts";
import { LogView } from "./log-view.ts";
import { SERVER_INSTANCE_HEADER } from "../../logs/server-instance.ts";
import { HEALTHY_AFTER_MS, StreamCursor, retryDelay } from "./resume.ts";
import { TimelineBar, timelineEntries } from "./timeline.ts";

// 200,000 lines: twice the 100,000 an operator may scroll through; 100,000
// measured ~60 MB of JS heap, so the cap bounds a tab to roughly 120 MB.
// Older lines are dropped.
const KEPT_LINES = 200_000;
// 5 s: the session's status badge (running, stopping, …) stays current.
const STATUS_REFRESH_MS = 5000;
// 1 s: a refused or failing stream fails well within this on a reachable
// service; one still open after it is connected.
const QUIET_CONNECTED_MS = 1000;
// 150 ms: typing a word filters once, not once per key, over 200,000 lines.
const SEARCH_DEBOUNCE_MS = 150;

export async function logPage(sessionIdText: string): Promise<void> {
  const sessionId = BigInt(sessionIdText);
  const store = new LineStore(KEPT_LINES);
  const followButton = document.getElementById("follow") as HTMLButtonElement;
  let unseen = 0;
  const history = new PageHistory(sessionId, store, () => schedule());
  const view = new LogView(
    document.getElementById("log")!,
    store,
    (follow) => {
      if (follow) unseen = 0;
      showFollow();
    },
    (first, last) => history.onRange(first, last),
  );
  history.attach(view);
  const showFollow = () => {
    followButton.hidden = view.follow;
    followButton.textContent = unseen > 0 ? `↓ Follow (${unseen.toLocaleString()} new lines)` : "↓ Follow new lines";
  };
  followButton.addEventListener("click", () => view.setFollow(true));

  const count = document.getElementById("count")!;
  const showCount = () => {
    count.textContent = `${store.shownCount.toLocaleString()} of ${store.size.toLocaleString()} lines`;
  };
  wireFilters(store, view, showCount);
  wireExport(store, sessionIdText, sessionId);
  void history.run();

  const notice = (text: string) => {
    store.add({ seq: 0, timestamp: Date.now(), source: "notice", message: text });
  };

  const cursor = new StreamCursor();
  let attempt = 0;
  const status = new StatusBadge(sessionId);
  // What happened to the session, above the strip and the log; read again whenever its status changes.
  const moves = new TimelineBar(document.getElementById("histogram") ?? document.getElementById("log")!, (ms) => void history.jump(ms));
  status.onStatus = () => void showTimeline(sessionId, moves);
  void status.poll();

  // Aborts the open stream when the status poll sees another server process.
  let current = new AbortController();
  status.onInstance = (id) => {
    if (cursor.instance !== undefined && id !== cursor.instance) current.abort();
  };

  for (;;) {
    const instance = await status.refresh();
    if (instance === undefined && cursor.instance !== undefined) {
      // Unreachable, or answering without saying which process it is:
      // resuming now could mix two numberings. Try again shortly.
      const delay = retryDelay(++attempt);
      showConnection("retrying", `can't reach the service, retrying in ${Math.ceil(delay / 1000)} s`);
      await pause(delay);
      continue;
    }
    current = new AbortController();
    const { after, restarted } = cursor.resume(instance);
    if (restarted) notice("The service restarted: its log buffer starts afresh, so lines published while it was down are missing here; reload the page in a few minutes to read them from the archive.");
    showConnection("connecting", after > 0 ? `reconnecting after line ${after}…` : "connecting…");
    const opened = Date.now();
    // Connect sends a stream's response headers with its first message, so a
    // quiet session gives no sign of life: a stream still open after a
    // moment, right after the service answered the status lookup, counts as
    // connected.
    const quiet = setTimeout(() => showConnection("live", "live, waiting for lines"), QUIET_CONNECTED_MS);
    try {
      const stream = logs.streamSessionLogs({ sessionId, afterSequenceNumber: BigInt(after) }, { signal: current.signal });
      let live = false;
      for await (const m of stream) {
        if (!live) {
          live = true;
          clearTimeout(quiet);
          showConnection("live", "live");
        }
        const arrival = cursor.accept(Number(m.sequenceNumber));
        if (arrival.kind === "duplicate") continue;
        if (arrival.renumbered) notice("The service's log buffer for this session started afresh: lines published in between may be missing.");
        if (arrival.missing > 0) notice(`${arrival.missing} lines were no longer buffered and are missing here.`);
        const line = { timestamp: Number(m.timestamp), source: m.source, message: m.message };
        if (!history.live(line)) continue; // its archived copy is on the page already
        const shown = store.add({ seq: Number(m.sequenceNumber), ...line });
        if (shown && !view.follow) unseen++;
        schedule();
      }
      // The server ended the stream (it is shutting down): reconnect.
    } catch (err) {
      clearTimeout(quiet);
      if (isUnauthenticated(err)) {
        showConnection("token", "access token needed");
        await askForToken();
        attempt = 0;
        continue;
      }
      const e = ConnectError.from(err);
      // The server will refuse this request however often it is sent.
      if (e.code === Code.InvalidArgument) return showConnection("error", e.rawMessage);
      // A stalled tab (RESOURCE_EXHAUSTED) or a known restart comes back at once.
      if (e.code === Code.ResourceExhausted || current.signal.aborted) attempt = 0;
    }
    clearTimeout(quiet);
    if (Date.now() - opened > HEALTHY_AFTER_MS) attempt = 0;
    const delay = retryDelay(++attempt);
    showConnection("retrying", `disconnected, retrying in ${Math.ceil(delay / 1000)} s`);
    await pause(delay);
  }

  function schedule() {
    showCount();
    if (!view.follow) showFollow();
    view.update();
  }
}

/** Reads the session's timeline and shows it; on failure keeps what is shown (the next status change reads it again). */
async function showTimeline(sessionId: bigint, bar: TimelineBar): Promise<void> {
  try {
    const res = await timeline.getSessionTimeline({ sessionId });
    bar.render(
      timelineEntries(
        res.transitions.map((t) => ({
          at: Number(t.at),
          from: t.fromStatus,
          to: t.toStatus,
          exitCode: t.exitCode,
          reason: t.reason,
          routingKey: t.routingKey,
          bySessionId: t.bySessionId === undefined ? undefined : Number(t.bySessionId),
        })),
      ),
    );
  } catch {
    // A convenience like the strip; the status badge asks for a token if one is needed.
  }
}

/** The session's status next to its title; its lookup also tells which server process answers. */
class StatusBadge {
  private readonly el = document.getElementById("session-status")!;
  private last: string | undefined;
  onInstance: (id: string) => void = () => {};
  /** Called when the status differs from the last one seen (the first answer included). */
  onStatus: (status: string) => void = () => {};
  constructor(private readonly sessionId: bigint) {}

  /** The answering process's instance id, or undefined when the service could not be reached. */
  async refresh(): Promise<string | undefined> {
    try {
      const res = await sessions.listSessions({ sessionIds: [this.sessionId] });
      const s = res.sessions[0];
      this.el.textContent = s ? s.status : "unknown session";
      this.el.className = `status status-${s?.status ?? "unknown"}`;
      this.el.title = s?.startedAt !== undefined ? `started ${localTime(Number(s.startedAt))}` : "";
      if (s && s.status !== this.last) this.onStatus((this.last = s.status));
      return this.seen(res.serverInstanceId);
    } catch (err) {
      if (isUnauthenticated(err)) {
        await askForToken();
        return this.refresh();
      }
      // The service answers errors (database down) with its instance id too.
      return this.seen(ConnectError.from(err).metadata.get(SERVER_INSTANCE_HEADER) ?? "");
    }
  }

  private seen(id: string): string | undefined {
    if (id) this.onInstance(id);
    return id || undefined;
  }

  async poll(): Promise<void> {
    for (;;) {
      await pause(STATUS_REFRESH_MS);
      await this.refresh();
    }
  }
}

function wireFilters(store: LineStore, view: LogView, showCount: () => void): void {
  const search = document.getElementById("search") as HTMLInputElement;
  const only = document.getElementById("only-matches") as HTMLInputElement;
  const boxes = SOURCES.map((s) => document.getElementById(`show-${s}`) as HTMLInputElement);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const apply = () => {
    const sources = new Set(SOURCES.filter((_, i) => boxes[i]!.checked));
    store.setFilter({ sources, query: only.checked ? search.value : "" });
    view.setQuery(search.value);
    view.refilter();
    showCount();
  };
  for (const b of [...boxes, only]) b.addEventListener("change", apply);
  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(apply, SEARCH_DEBOUNCE_MS);
  });
  showCount();
}

/**
 * Copy takes exactly the lines shown (filter and search applied); Download
 * the whole session under the same filter: the archive read from its start
 * (export.ts) joined to the live lines. If the archive cannot be read, it
 * saves the lines the tab holds and says so on the button.
 */
function wireExport(store: LineStore, sessionIdText: string, sessionId: bigint): void {
  const text = () => Array.from(store.shown(), lineAsText).join("\n") + "\n";
  const copy = document.getElementById("copy") as HTMLButtonElement;
  copy.addEventListener("click", async () => {
    const body = text();
    try {
      await navigator.clipboard.writeText(body);
    } catch {
      // The Clipboard API needs a secure context (https or localhost); plain
      // http on another host falls back to the older selection copy.
      const area = document.createElement("textarea");
      area.value = body;
      document.body.append(area);
      area.select();
      document.execCommand("copy");
      area.remove();
    }
    flash(copy, "Copied");
  });
  const download = document.getElementById("download") as HTMLButtonElement;
  download.addEventListener("click", async () => {
    if (download.disabled) return;
    download.disabled = true;
    download.dataset.label ??= download.textContent ?? "";
    let parts: string[];
    let warning: string | undefined;
    try {
      const session = await wholeSessionText(readHistory(sessionId), store, (n) => (download.textContent = `Reading ${n.toLocaleString()} lines…`));
      parts = session.parts;
      // Shown for a while on the button: the file holds log lines only.
      if (session.behind) warning = `Archive catching up: lines before ${localTime(session.behind.to)} may be missing`;
    } catch {
      parts = [text()];
      warning = "Archive unavailable: saved the lines in this tab";
    }
    download.textContent = download.dataset.label!;
    download.disabled = false;
    const url = URL.createObjectURL(new Blob(parts, { type: "text/plain;charset=utf-8" }));
    const a = document.createElement("a");
    a.href = url;
    a.download = `session-${sessionIdText}-${new Date().toISOString().replace(/[:.]/g, "-")}.log`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
    if (warning) flash(download, warning, WARNING_MS);
  });
}

// 1.5 s for "Copied"; 8 s for a warning, long enough to read a sentence.
const FLASH_MS = 1500;
const WARNING_MS = 8000;

const flashing = new WeakMap<HTMLButtonElement, ReturnType<typeof setTimeout>>();

/** Shows `text` on the button for a while, then its own label again (however often it is clicked meanwhile). */
function flash(button: HTMLButtonElement, text: string, ms = FLASH_MS): void {
  button.dataset.label ??= button.textContent ?? "";
  button.textContent = text;
  clearTimeout(flashing.get(button));
  flashing.set(button, setTimeout(() => (button.textContent = button.dataset.label!), ms));
}
