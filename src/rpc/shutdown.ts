/**
 * Connect ends every open call when its router's `shutdownSignal` aborts,
 * and sends the abort reason to the client when it is a ConnectError. On
 * shutdown clients should reconnect (to another replica), so the reason is
 * UNAVAILABLE, the code gRPC clients retry on.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { onAbort } from "../util/abort.ts";

export function rpcShutdownSignal(signal: AbortSignal): AbortSignal {
  const ac = new AbortController();
  onAbort(signal, () => ac.abort(new ConnectError("server is shutting down; reconnect", Code.Unavailable)));
  return ac.signal;
}
