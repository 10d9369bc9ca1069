/**
 * Connect ends every open call when its router's `shutdownSignal` aborts,
 * and sends the abort reason to the client when it is a ConnectError. On
 * shutdown clients should reconnect (to another replica), so the reason is
 * UNAVAILABLE, the code gRPC clients retry on.
 */
import { Code, ConnectError } from "@connectrpc/connect";

export function rpcShutdownSignal(signal: AbortSignal): AbortSignal {
  const ac = new AbortController();
  const stop = () => ac.abort(new ConnectError("server is shutting down; reconnect", Code.Unavailable));
  if (signal.aborted) stop();
  else signal.addEventListener("abort", stop, { once: true });
  return ac.signal;
}
