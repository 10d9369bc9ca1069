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
