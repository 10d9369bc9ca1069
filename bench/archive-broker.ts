/**
 * For bench/archive.ts (BENCH_BROKER_WORK=1): the work RabbitMQ does for one
 * vhost, per Erlang process, in reductions (the VM's unit of work). Unlike
 * the broker's CPU time this neither counts other vhosts' traffic (the
 * broker is shared with every test and bench on the machine) nor grows when
 * the broker waits for a core, so it compares the archive with its ceiling
 * on a busy machine. One `rabbitmqctl eval` per snapshot (~0.5 s of CPU:
 * taken only at a phase's start and end). Counted: the vhost's queue
 * processes, its connections' readers and its channels (consuming ones,
 * and the others: the publisher's; not the channels'
 * writer processes, nor work done in other processes' names, nor GC beyond
 * what the VM charges as reductions). And (BENCH_COUNT_ACKS=1, in the
 * service's process) the acks it sends, multiple and single. Not a test,
 * not shipped.
 */
import { spawnSync } from "node:child_process";

// Erlang, run inside the broker: "label pid reductions" per process of the vhost.
const EVAL = `
Red = fun(P) -> case erlang:process_info(P, reductions) of {reductions, N} -> N; _ -> 0 end end,
Qs = [{["queue:", element(4, amqqueue:get_name(Q))], amqqueue:get_pid(Q)} || Q <- rabbit_amqqueue:list(VH)],
Cs = [{"connections", P} || P <- pg_local:get_members(rabbit_connections), proplists:get_value(vhost, rabbit_reader:info(P, [vhost])) =:= VH],
Ch = [{case proplists:get_value(consumer_count, I) of 0 -> "other channels"; _ -> "consuming channels" end, P} || P <- rabbit_channel:list_local(), I <- [rabbit_channel:info(P, [vhost, consumer_count])], proplists:get_value(vhost, I) =:= VH],
lists:foreach(fun({L, P}) -> io:format("~s ~p ~b~n", [L, P, Red(P)]) end, Qs ++ Cs ++ Ch),
ok.`;

/** pid → [label, reductions]; empty when rabbitmqctl is not usable. */
export type BrokerWork = Map<string, [string, number]>;

export function brokerWork(vhost: string): BrokerWork {
  const out: BrokerWork = new Map();
  if (!process.env.BENCH_BROKER_WORK) return out;
  const r = spawnSync("rabbitmqctl", ["eval", `VH = <<"${vhost}">>,${EVAL}`], { encoding: "utf8" });
  for (const line of (r.stdout ?? "").split("\n")) {
    const m = /^(.+) (<[\d.]+>) (\d+)$/.exec(line.trim());
    if (m) out.set(m[2]!, [m[1]!, Number(m[3])]);
  }
  return out;
}

/**
 * Reductions per line between two snapshots, by label, biggest first
 * (`queue:amq.gen-…` and `queue:manman-processor.logs.…` read as `live
 * queue`). A process that started after `before` counts whole; one that
 * ended before `after` is lost, so take `after` before closing anything.
 */
export function workPerLine(before: BrokerWork, after: BrokerWork, lines: number): string {
  if (after.size === 0) return "";
  const by = new Map<string, number>();
  for (const [pid, [label, r]] of after) {
    const name = /^queue:(amq\.gen-|manman-processor\.logs\.)/.test(label) ? "live queue" : label.replace(/^queue:/, "");
    by.set(name, (by.get(name) ?? 0) + r - (before.get(pid)?.[1] ?? 0));
  }
  const total = [...by.values()].reduce((a, b) => a + b, 0);
  const parts = [...by].filter(([, r]) => r / lines >= 1).sort((a, b) => b[1] - a[1]);
  return `RabbitMQ reductions a line ${Math.round(total / lines)}: ` + parts.map(([k, r]) => `${k} ${Math.round(r / lines)}`).join(", ");
}

/** BENCH_COUNT_ACKS: counts the service's basic.ack frames, multiple and single (a single ack beyond a gap costs the broker more). */
export async function countAcks(): Promise<{ multiple: number; single: number } | undefined> {
  if (!process.env.BENCH_COUNT_ACKS) return undefined;
  const { AMQPChannel } = await import("@cloudamqp/amqp-client");
  const counts = { multiple: 0, single: 0 };
  const ack = AMQPChannel.prototype.basicAck;
  AMQPChannel.prototype.basicAck = function (this: InstanceType<typeof AMQPChannel>, tag: number, multiple = false) {
    counts[multiple ? "multiple" : "single"]++;
    return ack.call(this, tag, multiple);
  };
  return counts;
}
