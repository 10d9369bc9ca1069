/**
 * The viewer's two HTML pages. Static skeletons: everything dynamic is built
 * by the bundled script with DOM calls (text nodes only), and the pages
 * carry no inline script or style, so the Content-Security-Policy can forbid
 * both. The only value put into HTML, the session id, is digits by then.
 */
import type { ViewerAssets } from "./build.ts";

export function assetPath(kind: "js" | "css", assets: ViewerAssets): string {
  return `/assets/viewer-${assets[kind].hash}.${kind}`;
}

function page(title: string, bodyAttrs: string, body: string, assets: ViewerAssets): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${title}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${assetPath("css", assets)}">
<script type="module" src="${assetPath("js", assets)}"></script>
</head>
<body ${bodyAttrs}>
${body}
<dialog id="token-dialog">
  <form id="token-form">
    <p id="token-reason">This service needs a log access token.</p>
    <label>Access token <input id="token-input" type="password" autocomplete="off" required></label>
    <button type="submit">Use token</button>
  </form>
</dialog>
</body>
</html>
`;
}

export function sessionsPageHtml(assets: ViewerAssets): string {
  return page(
    "Sessions · manman",
    'data-page="sessions"',
    `<header class="bar">
  <h1>Sessions</h1>
  <span id="conn" class="conn" data-state="connecting" role="status">connecting…</span>
</header>
<main class="sessions">
  <table id="sessions">
    <thead><tr><th>Session</th><th>Config (sgc_id)</th><th>Status</th><th>Started</th><th>Ended</th><th>Exit code</th></tr></thead>
    <tbody></tbody>
  </table>
  <p id="empty" hidden>No sessions yet.</p>
</main>`,
    assets,
  );
}

export function logPageHtml(sessionId: string, assets: ViewerAssets): string {
  if (!/^\d+$/.test(sessionId)) throw new Error("session id must be digits");
  return page(
    `Session ${sessionId} · manman`,
    `data-page="log" data-session-id="${sessionId}"`,
    `<header class="bar">
  <a href="/" class="back">← Sessions</a>
  <h1>Session ${sessionId}</h1>
  <span id="session-status" class="status"></span>
  <span id="conn" class="conn" data-state="connecting" role="status">connecting…</span>
</header>
<div class="toolbar">
  <fieldset class="sources"><legend>Show</legend>
    <label class="src-stdout"><input type="checkbox" id="show-stdout" checked> stdout</label>
    <label class="src-stderr"><input type="checkbox" id="show-stderr" checked> stderr</label>
    <label class="src-host"><input type="checkbox" id="show-host" checked> host</label>
  </fieldset>
  <input type="search" id="search" placeholder="Search" aria-label="Search" autocomplete="off">
  <label title="Untick to see matches highlighted among all lines"><input type="checkbox" id="only-matches" checked> only matching lines</label>
  <span id="count" class="count"></span>
  <button type="button" id="copy">Copy</button>
  <button type="button" id="download">Download</button>
</div>
<div id="log" class="log" tabindex="0" aria-label="Log lines"><div class="spacer"><div class="rows"></div></div></div>
<button type="button" id="follow" class="follow" hidden>↓ Follow new lines</button>`,
    assets,
  );
}
