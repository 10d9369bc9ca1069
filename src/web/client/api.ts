/**
 * Connect-Web clients for the four services on this origin, and the access
 * token: asked for once when the server answers UNAUTHENTICATED, kept in
 * sessionStorage (this tab only, gone when it closes), sent as a bearer token.
 */
import { Code, ConnectError, createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { LogProcessor } from "../../gen/manman/v1/log_processor_pb.ts";
import { SessionViewer } from "../../gen/manman/processor/v1/sessions_pb.ts";
import { LogHistory, ReadDirection } from "../../gen/manman/processor/v1/log_history_pb.ts";
import { SessionTimeline } from "../../gen/manman/processor/v1/session_timeline_pb.ts";
import type { ReadHistory } from "./history.ts";
import { onAbort } from "../../util/abort.ts";

const TOKEN_KEY = "manman.logAccessToken";

export function storedToken(): string | null {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null; // storage disabled: the token is asked for on each page load
  }
}

let memoryToken: string | null = null;
function currentToken(): string | null {
  return memoryToken ?? storedToken();
}

const bearer: Interceptor = (next) => (req) => {
  const token = currentToken();
  if (token) req.header.set("Authorization", `Bearer ${token}`);
  return next(req);
};

const transport = createConnectTransport({ baseUrl: location.origin, useBinaryFormat: true, interceptors: [bearer] });
export const logs: Client<typeof LogProcessor> = createClient(LogProcessor, transport);
export const sessions: Client<typeof SessionViewer> = createClient(SessionViewer, transport);
export const history: Client<typeof LogHistory> = createClient(LogHistory, transport);
export const timeline: Client<typeof SessionTimeline> = createClient(SessionTimeline, transport);

/** One session's archive as history.ts reads it. */
export function readHistory(sessionId: bigint): ReadHistory {
  return async ({ cursor, fromTimestamp, backward, limit }) => {
    const start =
      cursor !== undefined
        ? { case: "cursor" as const, value: cursor }
        : fromTimestamp !== undefined
          ? { case: "fromTimestamp" as const, value: BigInt(fromTimestamp) }
          : { case: undefined };
    const res = await history.readSessionLogs({ sessionId, start, limit, direction: backward ? ReadDirection.BACKWARD : ReadDirection.FORWARD });
    return {
      lines: res.lines.map((l) => ({ timestamp: Number(l.timestamp), source: l.source, message: l.message })),
      nextCursor: res.nextCursor,
      prevCursor: res.prevCursor,
      hasMore: res.hasMore,
    };
  };
}

export function isUnauthenticated(err: unknown): boolean {
  return ConnectError.from(err).code === Code.Unauthenticated;
}

let asking: Promise<void> | null = null;

/**
 * Shows the token dialog and resolves once the user has entered a token.
 * Concurrent callers (the stream and the status poll) share one dialog.
 */
export function askForToken(): Promise<void> {
  asking ??= new Promise<void>((resolve) => {
    const dialog = document.getElementById("token-dialog") as HTMLDialogElement;
    const form = document.getElementById("token-form") as HTMLFormElement;
    const input = document.getElementById("token-input") as HTMLInputElement;
    const reason = document.getElementById("token-reason")!;
    reason.textContent = currentToken()
      ? "The server refused that access token. Enter another one."
      : "This service needs a log access token.";
    input.value = "";
    const submit = (ev: SubmitEvent) => {
      ev.preventDefault();
      const token = input.value.trim();
      if (!token) return;
      memoryToken = token;
      try {
        sessionStorage.setItem(TOKEN_KEY, token);
      } catch {
        // kept in memory for this page only
      }
      form.removeEventListener("submit", submit);
      dialog.close();
      asking = null;
      resolve();
    };
    form.addEventListener("submit", submit);
    // Escape would leave the page without a way back: keep it open.
    dialog.addEventListener("cancel", (ev) => ev.preventDefault());
    dialog.showModal();
    input.focus();
  });
  return asking;
}

/** Shows the connection state in the header badge. */
export function showConnection(state: "connecting" | "live" | "retrying" | "token" | "error", text: string): void {
  const el = document.getElementById("conn");
  if (!el) return;
  el.dataset.state = state;
  el.textContent = text;
}

/** Resolves after `ms`, or at once when `signal` (if any) aborts. */
export function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const stop = signal ? onAbort(signal, () => (clearTimeout(timer), resolve())) : () => {};
    if (!signal?.aborted) timer = setTimeout(() => (stop(), resolve()), ms);
  });
}
