import { expect, test } from "bun:test";
import { backupCompletedBody, backupFailedBody, heartbeatBody, hostProperties, hostStatusBody, logLineBody, sessionStatusBody } from "./messages.ts";

test("bodies are byte for byte what Go's json.Marshal of the host manager's structs writes", () => {
  expect(hostStatusBody(1, "online")).toBe('{"server_id":1,"status":"online"}');
  expect(heartbeatBody(1, { total: 2, pending: 0, starting: 1, running: 1, stopping: 0, stopped: 0, crashed: 0 })).toBe(
    '{"server_id":1,"session_stats":{"total":2,"pending":0,"starting":1,"running":1,"stopping":0,"stopped":0,"crashed":0}}',
  );
  expect(sessionStatusBody(5, 3, "running")).toBe('{"session_id":5,"sgc_id":3,"status":"running"}');
  expect(sessionStatusBody(5, 3, "crashed", 137)).toBe('{"session_id":5,"sgc_id":3,"status":"crashed","exit_code":137}');
  expect(sessionStatusBody(5, 0, "starting")).toBe('{"session_id":5,"sgc_id":0,"status":"starting"}');
  expect(backupCompletedBody(7, "backups/3/2/7.tar.gz")).toBe('{"backup_id":7,"s3_url":"s3://backups/3/2/7.tar.gz","status":"completed"}');
  expect(backupFailedBody(7, "disk full")).toBe('{"backup_id":7,"status":"failed","error_message":"disk full"}');
});

test("log messages are escaped as Go escapes them: HTML characters and U+2028/9 as \\u, control characters as JSON does", () => {
  const body = logLineBody(5, 1700000000123, "stdout", '\x1b[31m<b>&"x"\u2028\t');
  expect(body).toBe('{"session_id":5,"timestamp":1700000000123,"source":"stdout","message":"\\u001b[31m\\u003cb\\u003e\\u0026\\"x\\"\\u2028\\t"}');
  expect(JSON.parse(body).message).toBe('\x1b[31m<b>&"x"\u2028\t');
});

test("every host message is persistent JSON with a timestamp and an empty headers table", () => {
  const now = new Date(0);
  expect(hostProperties(now)).toEqual({ contentType: "application/json", deliveryMode: 2, timestamp: now, headers: {} });
});
