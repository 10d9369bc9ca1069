import { expect, test } from "bun:test";
import { eventJson, eventLine, toExternalEvent } from "./watch.ts";

const bytes = (s: string) => new TextEncoder().encode(s);
const at = new Date("2026-11-25T13:44:37Z");

test("a readable line: time, routing key, the body's fields", () => {
  const e = toExternalEvent({ routingKey: "manman.session.crashed", properties: { timestamp: at }, body: bytes('{"session_id":7,"sgc_id":3,"status":"crashed","exit_code":1}') }, new Date(0));
  expect(eventLine(e)).toBe("2026-11-25T13:44:37Z  manman.session.crashed  session_id=7 sgc_id=3 status=crashed exit_code=1");
});

test("values with spaces, quotes or structure are JSON; a body that is not an object is shown as it is", () => {
  const e = (body: string) => toExternalEvent({ routingKey: "k", properties: { timestamp: at }, body: bytes(body) }, at);
  expect(eventLine(e('{"a":"two words","b":null,"c":[1]}'))).toBe('2026-11-25T13:44:37Z  k  a="two words" b=null c=[1]');
  expect(eventLine(e("not json"))).toBe("2026-11-25T13:44:37Z  k  not json");
  expect(eventLine(e("[1,2]"))).toBe("2026-11-25T13:44:37Z  k  [1,2]");
});

test("--json: one object per line with routing_key, timestamp and the body parsed (or its text)", () => {
  const e = toExternalEvent({ routingKey: "manman.host.offline", properties: {}, body: bytes('{"server_id":2,"status":"offline"}') }, at);
  expect(JSON.parse(eventJson(e))).toEqual({ routing_key: "manman.host.offline", timestamp: "2026-11-25T13:44:37.000Z", body: { server_id: 2, status: "offline" } });
  const raw = toExternalEvent({ routingKey: "x", properties: { timestamp: at }, body: bytes("plain") }, at);
  expect(JSON.parse(eventJson(raw)).body).toBe("plain");
  expect(eventJson(raw)).not.toContain("\n");
});

test("a crashed event's log_tail: counted on its line, the lines beneath it, one printed line each", () => {
  const body = { session_id: 7, sgc_id: 3, status: "crashed", exit_code: 1, log_tail: ["[2026-11-25T13:44:36.000Z] [stdout] saving", "[2026-11-25T13:44:37.000Z] [stderr] panic:\nboom"] };
  const e = toExternalEvent({ routingKey: "manman.session.crashed", properties: { timestamp: at }, body: bytes(JSON.stringify(body)) }, at);
  expect(eventLine(e).split("\n")).toEqual([
    "2026-11-25T13:44:37Z  manman.session.crashed  session_id=7 sgc_id=3 status=crashed exit_code=1 log_tail=<2 lines>",
    "    | [2026-11-25T13:44:36.000Z] [stdout] saving",
    "    | [2026-11-25T13:44:37.000Z] [stderr] panic: boom",
  ]);
  const empty = toExternalEvent({ routingKey: "manman.session.lost", properties: { timestamp: at }, body: bytes('{"session_id":7,"log_tail":[]}') }, at);
  expect(eventLine(empty)).toBe("2026-11-25T13:44:37Z  manman.session.lost  session_id=7 log_tail=[]");
});
