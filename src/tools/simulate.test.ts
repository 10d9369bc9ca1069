import { expect, test } from "bun:test";
import { urlWithDatabase, viewerLines } from "./demo.ts";
import { DEFAULT_LIFETIME_MS } from "./fleet/fleet.ts";
import { progressLine, reportLines, sessionLifetimeMs } from "./simulate.ts";
import { howToCreateVhost, urlWithVhost } from "./vhost.ts";

const report = {
  sent: { host_status: 6, heartbeat: 36, session_status: 90, log_line: 5840 },
  sessions: { created: 29, stopped: 9, crashed: 5, killed: 2, failedToStart: 3 },
  open: { creating: 0, pending: 0, starting: 3, running: 7, stopping: 0 },
  elapsedMs: 60_012,
  linesPerSecond: 97.3,
};

test("the report says what was sent by kind, the rate against the one asked, and how the sessions went", () => {
  expect(reportLines(report, 100)).toEqual([
    "sent in 60.0 s: 6 host status, 36 heartbeats, 90 session status, 5,840 log lines (97 lines/s of 100 asked)",
    "sessions: 29 created; 9 stopped, 5 crashed, 2 killed, 3 failed to start; 3 starting, 7 running",
  ]);
  expect(progressLine(report)).toBe("60 s: 7 sessions running, 5,840 lines (97/s), 36 heartbeats, 29 sessions created");
});

test("sessions live 20-60 s, or a quarter to a half of a run shorter than three of their lives", () => {
  expect(sessionLifetimeMs(undefined)).toEqual(DEFAULT_LIFETIME_MS);
  expect(sessionLifetimeMs(600)).toEqual(DEFAULT_LIFETIME_MS);
  expect(sessionLifetimeMs(10)).toEqual([2_500, 5_000]);
  expect(sessionLifetimeMs(100)).toEqual([20_000, 50_000]);
});

test("the demo's vhost and database replace the configured ones in the URLs, credentials and options kept", () => {
  expect(urlWithVhost("amqp://guest:secret@broker:5672/prod", "manman-demo")).toBe("amqp://guest:secret@broker:5672/manman-demo");
  expect(urlWithVhost("amqps://u:p@broker/", "a b")).toBe("amqps://u:p@broker/a%20b");
  expect(urlWithDatabase("postgres://postgres@db:5432/manman?sslmode=disable", "manman-demo")).toBe("postgres://postgres@db:5432/manman-demo?sslmode=disable");
});

test("the viewer line carries the token to paste when the logs need one", () => {
  expect(viewerLines(8080, undefined)).toEqual(["viewer: http://127.0.0.1:8080/"]);
  expect(viewerLines(8080, ["t0ken", "other"])).toEqual(["viewer: http://127.0.0.1:8080/  (LOG_ACCESS_TOKEN is set: paste t0ken when the page asks)"]);
});

test("when no vhost can be made here, the message says what to run on the broker's host, without the password", () => {
  const how = howToCreateVhost("amqp://admin:s3cret@rabbit.internal:5672/", "manman-demo");
  expect(how).toContain("rabbitmqctl add_vhost manman-demo && rabbitmqctl set_permissions -p manman-demo admin '.*' '.*' '.*'");
  expect(how).toContain("curl -u admin -X PUT http://rabbit.internal:15672/api/vhosts/manman-demo");
  expect(how).not.toContain("s3cret");
});
