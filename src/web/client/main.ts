/** Entry point of the browser bundle: each page says which one it is. */
import { logPage } from "./log-page.ts";
import { sessionsPage } from "./sessions-page.ts";

const page = document.body.dataset.page;
if (page === "sessions") void sessionsPage();
else if (page === "log") void logPage(document.body.dataset.sessionId!);
