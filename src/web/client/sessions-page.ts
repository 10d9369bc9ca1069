/** `/`: the session list, refreshed every few seconds for live status. */
import type { Session } from "../../gen/manman/processor/v1/sessions_pb.ts";
import { askForToken, isUnauthenticated, pause, sessions, showConnection } from "./api.ts";
import { localTime } from "./lines.ts";
import { retryDelay } from "./resume.ts";

// 3 s: status changes (running → stopping) show up about as fast as an
// operator looks again; one indexed query per open tab every 3 s is nothing.
const REFRESH_MS = 3000;

export async function sessionsPage(): Promise<void> {
  let failures = 0;
  for (;;) {
    try {
      const res = await sessions.listSessions({});
      render(res.sessions);
      failures = 0;
      showConnection("live", `updated ${new Date().toLocaleTimeString()}`);
      await pause(REFRESH_MS);
    } catch (err) {
      if (isUnauthenticated(err)) {
        showConnection("token", "access token needed");
        await askForToken();
        continue;
      }
      const delay = retryDelay(++failures);
      showConnection("retrying", `can't reach the service, retrying in ${Math.ceil(delay / 1000)} s`);
      await pause(delay);
    }
  }
}

function render(list: Session[]): void {
  const body = document.querySelector("#sessions tbody")!;
  const rows = list.map((s) => {
    const tr = document.createElement("tr");
    tr.dataset.sessionId = String(s.sessionId);
    tr.dataset.status = s.status;
    const link = document.createElement("a");
    link.href = `/sessions/${s.sessionId}`;
    link.textContent = String(s.sessionId);
    const status = document.createElement("span");
    status.className = `status status-${s.status}`;
    status.textContent = s.status;
    const cells: (Node | string)[] = [
      link,
      String(s.sgcId),
      status,
      s.startedAt !== undefined ? localTime(Number(s.startedAt)) : "",
      s.endedAt !== undefined ? localTime(Number(s.endedAt)) : "",
      s.exitCode !== undefined ? String(s.exitCode) : "",
    ];
    for (const c of cells) {
      const td = document.createElement("td");
      td.append(c);
      tr.append(td);
    }
    return tr;
  });
  body.replaceChildren(...rows);
  (document.getElementById("empty") as HTMLElement).hidden = list.length > 0;
}
