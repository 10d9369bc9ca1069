import { expect, test } from "bun:test";
import { renderEventBody } from "./external.ts";

test("host event bodies are in contract order", () => {
  expect(renderEventBody({ status: "offline", server_id: 42 })).toBe('{"server_id":42,"status":"offline"}');
});

test("session event bodies are in contract order and omit a missing exit_code", () => {
  expect(renderEventBody({ status: "crashed", exit_code: 137, sgc_id: 3, session_id: 7 })).toBe(
    '{"session_id":7,"sgc_id":3,"status":"crashed","exit_code":137}',
  );
  expect(renderEventBody({ sgc_id: 3, status: "running", session_id: 7, exit_code: null })).toBe(
    '{"session_id":7,"sgc_id":3,"status":"running"}',
  );
});

test("a crashed or lost event's log_tail comes last, after the contract's fields, as it is", () => {
  const tail = ["[2026-01-02T15:04:05.123Z] [stderr] Segmentation fault"];
  expect(renderEventBody({ log_tail: tail, status: "lost", sgc_id: 3, session_id: 7 })).toBe(
    `{"session_id":7,"sgc_id":3,"status":"lost","log_tail":${JSON.stringify(tail)}}`,
  );
  expect(renderEventBody({ log_tail: [], exit_code: 1, status: "crashed", sgc_id: 3, session_id: 7 })).toBe(
    '{"session_id":7,"sgc_id":3,"status":"crashed","exit_code":1,"log_tail":[]}',
  );
});
