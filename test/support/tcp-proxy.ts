/**
 * A TCP proxy for fault tests: the processor talks to RabbitMQ or PostgreSQL
 * through it, and the test cuts every socket and refuses new ones (a real
 * outage as the client sees it: connection reset, then connection refused),
 * then restores service on the same port. The shared services never stop.
 * `freeze()` is the other kind of outage: sockets stay open but nothing
 * moves (a network that drops packets without resetting), so only timeouts
 * notice it; `thaw()` lets the held bytes and connections through.
 */
import { createServer, connect, type Server, type Socket } from "node:net";

export class TcpProxy {
  private server: Server | undefined;
  private readonly pairs = new Set<[Socket, Socket]>();
  private frozen = false;
  private readonly held: Socket[] = [];
  /** Connections accepted since start (a reconnecting client shows up here). */
  accepted = 0;

  private constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
    public port: number,
  ) {}

  /** Listens on 127.0.0.1 (a free port) and forwards to host:port. */
  static async start(targetHost: string, targetPort: number): Promise<TcpProxy> {
    const proxy = new TcpProxy(targetHost, targetPort, 0);
    await proxy.listen();
    return proxy;
  }

  /** Rewrites a URL's host and port to go through this proxy. */
  route(url: string): string {
    const u = new URL(url);
    u.hostname = "127.0.0.1";
    u.port = String(this.port);
    return u.toString();
  }

  get up(): boolean {
    return this.server !== undefined;
  }

  /** Open client connections right now. */
  get connections(): number {
    return this.pairs.size;
  }

  /** Destroys every open connection and refuses new ones until `restore()`. */
  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    const closed = server ? new Promise<void>((r) => server.close(() => r())) : Promise.resolve();
    for (const [client, upstream] of this.pairs) {
      client.destroy();
      upstream.destroy();
    }
    this.pairs.clear();
    for (const client of this.held.splice(0)) client.destroy();
    this.frozen = false;
    await closed;
  }

  /** Stops every byte in both directions, and holds new connections unanswered, until `thaw()`. */
  freeze(): void {
    this.frozen = true;
    for (const [client, upstream] of this.pairs) {
      client.unpipe(upstream);
      upstream.unpipe(client);
      client.pause();
      upstream.pause();
    }
  }

  /** Lets everything held by `freeze()` through. */
  thaw(): void {
    this.frozen = false;
    for (const [client, upstream] of this.pairs) {
      client.pipe(upstream);
      upstream.pipe(client);
    }
    for (const client of this.held.splice(0)) if (!client.destroyed) this.connectUpstream(client);
  }

  /** Accepts connections again, on the same port. */
  async restore(): Promise<void> {
    if (!this.server) await this.listen();
  }

  async close(): Promise<void> {
    await this.cut();
  }

  private listen(): Promise<void> {
    const server = createServer((client) => this.forward(client));
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.port, "127.0.0.1", () => {
        server.off("error", reject);
        this.port = (server.address() as { port: number }).port;
        this.server = server;
        resolve();
      });
    });
  }

  private forward(client: Socket): void {
    this.accepted++;
    if (this.frozen) {
      client.pause();
      client.on("error", () => client.destroy());
      this.held.push(client);
      return;
    }
    this.connectUpstream(client);
  }

  private connectUpstream(client: Socket): void {
    const upstream = connect(this.targetPort, this.targetHost);
    const pair: [Socket, Socket] = [client, upstream];
    this.pairs.add(pair);
    const drop = () => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on("error", drop).on("close", drop);
    upstream.on("error", drop).on("close", drop);
    client.pipe(upstream);
    upstream.pipe(client);
  }
}
