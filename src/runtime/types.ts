/** What the rest of the code may ask of the runtime. Nothing else is runtime-specific. */
export interface RequestContext {
  /**
   * Keep this request open however long it stays quiet. Bun closes HTTP
   * connections idle for 10 s by default (oven-sh/bun#13392), which would cut
   * a log stream during a quiet period; long-lived streams call this.
   */
  keepOpen(): void;
  /** The client's TCP address (the peer, not a forwarded header); undefined when the runtime cannot tell. */
  peer?: string;
}

export type FetchHandler = (req: Request, ctx: RequestContext) => Response | Promise<Response>;

export interface ServeOptions {
  port: number;
  hostname?: string;
  fetch: FetchHandler;
  /** Aborting stops accepting connections and closes open ones. */
  signal: AbortSignal;
}

export interface Served {
  /** The bound port (useful with port 0). */
  port: number;
  /** Settles when the server has stopped. */
  stopped: Promise<void>;
}

export interface Runtime {
  name: "bun" | "deno";
  serve(options: ServeOptions): Promise<Served>;
}
