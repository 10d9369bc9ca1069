/** Bun twin of the runtime adapter: Bun.serve. */
import type { Runtime, ServeOptions, Served } from "./types.ts";
import { aborted } from "../util/abort.ts";

declare const Bun: {
  serve(options: unknown): {
    port: number;
    timeout(req: Request, seconds: number): void;
    requestIP(req: Request): { address: string } | null;
    stop(closeActiveConnections?: boolean): Promise<void>;
  };
};

export const bunRuntime: Runtime = {
  name: "bun",
  async serve({ port, hostname, fetch, signal }: ServeOptions): Promise<Served> {
    const server = Bun.serve({
      port,
      hostname: hostname ?? "0.0.0.0",
      // Bun's own default (10 s): plain requests (health, unary RPC, assets)
      // finish in milliseconds. Streams opt out per request with keepOpen(),
      // and the quiet-stream tests (12 s) prove they do.
      idleTimeout: 10,
      fetch: (req: Request) => fetch(req, { keepOpen: () => server.timeout(req, 0), peer: server.requestIP(req)?.address }),
    });
    // Stopped however the stop goes: a failed close has nothing left to wait for.
    const stopped = aborted(signal).then(() => server.stop(true)).catch(() => {});
    return { port: server.port, stopped };
  },
};
