/**
 * The broker's side of `bench:logs` (bench/logs.ts), measured apart from
 * the service: its drain ceiling, and its delivery latency.
 */
import { AMQPClient, type AMQPChannel } from "@cloudamqp/amqp-client";

/** The broker's own limit: the same lines through `manman` into a queue like the live one, drained by a consumer that does nothing. */
export async function brokerCeiling(url: string, ch: AMQPChannel, n: number, keys: number, body: (i: number) => string): Promise<number> {
  const sub = await new AMQPClient(url).connect();
  try {
    const sch = await sub.channel();
    // As amqp/log-queue.ts declares the live queue.
    const q = await sch.queueDeclare("", { exclusive: true, autoDelete: true }, { "x-max-length": n + 10_000, "x-overflow": "drop-head", "x-message-ttl": 180_000 });
    await sch.queueBind(q.name, "manman", "ceiling.#");
    for (let i = 0; i < n; i++) await ch.basicPublish("manman", `ceiling.${i % keys}`, body(i));
    await Bun.sleep(1000);
    let got = 0;
    let done!: () => void;
    const all = new Promise<void>((r) => (done = r));
    const t0 = performance.now();
    await sch.basicConsume(q.name, { noAck: true, exclusive: true }, () => void (++got === n && done()));
    await all;
    return n / ((performance.now() - t0) / 1000);
  } finally {
    await sub.close().catch(() => {});
  }
}

export interface BrokerWatcher {
  /** p50/p99 (ms) of publish → this consumer since the last call. */
  take(): { p50: number; p99: number; n: number };
  close(): Promise<void>;
}

/**
 * The broker's leg of a line's delivery, without the service: a consumer
 * that does nothing but note publish → arrival (each message's `message` is
 * its publish time), on a queue like the live one bound to `key`.
 */
export async function brokerWatcher(url: string, key: string): Promise<BrokerWatcher> {
  const client = await new AMQPClient(url).connect();
  const ch = await client.channel();
  const q = await ch.queueDeclare("", { exclusive: true, autoDelete: true }, { "x-max-length": 100_000, "x-overflow": "drop-head", "x-message-ttl": 180_000 });
  await ch.queueBind(q.name, "manman", key);
  let latencies: number[] = [];
  await ch.basicConsume(q.name, { noAck: true, exclusive: true }, (msg) => {
    const at = performance.timeOrigin + performance.now();
    const published = Number((JSON.parse(msg.bodyToString() ?? "{}") as { message?: string }).message);
    if (Number.isFinite(published)) latencies.push(at - published);
  });
  return {
    take() {
      const l = latencies.sort((a, b) => a - b);
      latencies = [];
      const pct = (p: number) => l[Math.min(l.length - 1, Math.ceil((p / 100) * l.length) - 1)] ?? NaN;
      return { p50: pct(50), p99: pct(99), n: l.length };
    },
    close: () => client.close().catch(() => {}),
  };
}
