/**
 * What a call ended with, as a test compares it: "ok", or the Connect code
 * of the error it threw (a gRPC status, a Connect error, a fetch failure,
 * all through ConnectError.from).
 */
import { Code, ConnectError } from "@connectrpc/connect";

export function codeOf(p: Promise<unknown>): Promise<Code | "ok"> {
  return p.then(
    () => "ok" as const,
    (err) => ConnectError.from(err).code,
  );
}
