/** Deno twin of the runtime adapter: Deno.serve. */
import type { Runtime, ServeOptions, Served } from "./types.ts";

declare const Deno: {
  serve(
    options: { port: number; hostname?: string; signal: AbortSignal; onListen?: (addr: { port: number }) => void },
    handler: (req: Request, info: { remoteAddr: { hostname?: string } }) => Response | Promise<Response>,
  ): { finished: Promise<void>; addr: { port: number } };
};

export const denoRuntime: Runtime = {
  name: "deno",
  async serve({ port, hostname, fetch, signal }: ServeOptions): Promise<Served> {
    // Deno has no idle timeout on a response that is still streaming, so
    // keepOpen() has nothing to do.
    const server = Deno.serve({ port, hostname: hostname ?? "0.0.0.0", signal, onListen: () => {} }, (req, info) =>
      fetch(req, { keepOpen: () => {}, peer: info.remoteAddr.hostname }),
    );
    return { port: server.addr.port, stopped: server.finished };
  },
};
